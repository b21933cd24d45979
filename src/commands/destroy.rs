use super::{confirm, exit, finish, OutputFormat, Session};
use crate::model::Desired;
use crate::plan;

/// `deployer destroy`: delete everything the environment owns, in every region, dependents
/// first. Asks on a terminal; needs `--yes` anywhere else.
pub async fn destroy(session: &Session, assume_yes: bool) -> miette::Result<u8> {
    // As `up --yes`: with --yes nothing waits between this read and the lock, and the lock's
    // generation can show under the lock that it still holds (src/lock.rs).
    if assume_yes {
        session.read_fence().await;
    }
    let observed = session.observe().await?;
    let c = session.config();
    let nothing = Desired::empty(&c.app, &c.env);
    let mut plan = plan::plan(&nothing, &observed);
    mark_data(session, &mut plan).await;
    if plan.is_empty() {
        // An `up` that took the lock and then created nothing leaves only the lock's generation.
        session.forget_generations().await;
        if session.settings.output == OutputFormat::Json {
            return finish(session, "destroy", &plan, &[]);
        }
        eprintln!("Nothing to destroy: no resource is tagged for environment '{}'.", c.env);
        return Ok(exit::OK);
    }
    if !session.settings.quiet {
        session.show_plan(&plan);
    }
    let question = format!(
        "\nDelete all {} resources of environment '{}' in {}?",
        plan.changes.len(),
        c.env,
        c.region_names().join(" and ")
    );
    if !confirm(&question, assume_yes).await? {
        eprintln!("Nothing deleted.");
        return Ok(exit::ERROR);
    }
    eprintln!();
    let (plan, outcomes) = session.under_lock("destroy", &nothing, &plan, Some(&observed)).await?;
    // Nothing of the environment is left: not its lock's generation either, once the lock is
    // let go (a run that took it since keeps its own).
    session.forget_generations().await;
    finish(session, "destroy", &plan, &outcomes)
}

/// Says in the plan what a delete destroys besides the resource, as the databases' deletes
/// say it: the images a repository holds (and whether `registry.keep_on_destroy` keeps it), the
/// log events a log group stores. One `ListImages` per repository and one `DescribeLogGroups`
/// per log group, read-only; a read that fails says that the data could not be counted, so a
/// line without a mark always means there is none.
async fn mark_data(session: &Session, plan: &mut crate::plan::Plan) {
    use crate::cloud::AwsResultExt;
    let keep = session.config().registry.keep_on_destroy;
    for change in &mut plan.changes {
        let crate::plan::Change::Delete { found, reason } = change else { continue };
        let region = found.address.region().to_string();
        let note = match &found.spec {
            crate::resources::Spec::EcrRepository(repo) => {
                let ecr: aws_sdk_ecr::Client = session.clients.get(&region);
                let images: Result<Vec<aws_sdk_ecr::types::ImageIdentifier>, _> = ecr
                    .list_images()
                    .repository_name(&repo.name)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await;
                images_note(images.op("ListImages").map(|ids| ids.len()), keep)
            }
            crate::resources::Spec::LogGroup(group) => {
                let logs: aws_sdk_cloudwatchlogs::Client = session.clients.get(&region);
                let out = logs
                    .describe_log_groups()
                    .log_group_name_prefix(&group.name)
                    .send()
                    .await
                    .op("DescribeLogGroups");
                Some(log_events_note(out.map(|out| {
                    out.log_groups()
                        .iter()
                        .find(|g| g.log_group_name() == Some(group.name.as_str()))
                        .and_then(|g| g.stored_bytes())
                        .unwrap_or(0)
                })))
            }
            _ => None,
        };
        if let Some(note) = note {
            *reason = format!("{reason}; {note}");
        }
    }
}

/// A repository's mark: `None` when it holds no image.
fn images_note(images: Result<usize, crate::cloud::Error>, keep: bool) -> Option<String> {
    Some(match images {
        Ok(0) => return None,
        Ok(n) if keep => format!("kept: it holds {n} image(s) and registry.keep_on_destroy = true"),
        Ok(n) => format!(
            "DATA LOSS: deletes the {n} image(s) it holds (registry.keep_on_destroy = true keeps a repository that holds images)"
        ),
        Err(e) if keep => {
            format!("kept if it holds images (registry.keep_on_destroy = true); they could not be counted: {e}")
        }
        Err(e) => format!("DATA LOSS?: deletes any image it holds; they could not be counted: {e}"),
    })
}

fn log_events_note(stored_bytes: Result<i64, crate::cloud::Error>) -> String {
    match stored_bytes {
        Ok(bytes) => {
            format!("DATA LOSS: deletes its log events ({:.1} MB stored)", bytes as f64 / 1_048_576.0)
        }
        Err(e) => format!("DATA LOSS?: deletes its log events; how much is stored could not be read: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Error;

    fn denied(operation: &'static str) -> Error {
        Error::Refused {
            operation,
            code: Some("AccessDeniedException".into()),
            message: "not allowed".into(),
        }
    }

    #[test]
    fn a_repository_is_marked_by_its_images_and_a_failed_count_says_so() {
        assert_eq!(images_note(Ok(0), false), None);
        assert_eq!(images_note(Ok(0), true), None);
        assert!(images_note(Ok(2), false).unwrap().starts_with("DATA LOSS: deletes the 2 image(s) it holds"));
        assert_eq!(
            images_note(Ok(2), true).unwrap(),
            "kept: it holds 2 image(s) and registry.keep_on_destroy = true"
        );
        let failed = images_note(Err(denied("ListImages")), false).unwrap();
        assert!(
            failed.starts_with("DATA LOSS?: ") && failed.ends_with("ListImages: not allowed"),
            "{failed}"
        );
        let kept = images_note(Err(denied("ListImages")), true).unwrap();
        assert!(kept.starts_with("kept if it holds images") && kept.contains("ListImages"), "{kept}");
    }

    #[test]
    fn a_log_group_is_marked_by_what_it_stores_and_a_failed_read_says_so() {
        assert_eq!(log_events_note(Ok(12_897_485)), "DATA LOSS: deletes its log events (12.3 MB stored)");
        let failed = log_events_note(Err(denied("DescribeLogGroups")));
        assert!(failed.starts_with("DATA LOSS?: ") && failed.contains("DescribeLogGroups"), "{failed}");
    }
}
