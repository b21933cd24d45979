//! What must hold before any deployment starts: the image is in every region's repository,
//! and its scan in the primary region has nothing at `release.block_on_severity` or worse.

use std::time::Duration;

use aws_sdk_ecr::types::{ImageIdentifier, ScanStatus};

use super::{Names, Progress};
use crate::cloud::{AwsResultExt, Clients, Error, Pace};
use crate::config::Config;
use crate::config::SEVERITIES;

/// Waits until the tag is in each region's repository (the primary's is pushed to; the others
/// fill by replication, which can lag), within `release.image_wait_secs`. Missing in the
/// primary is an error at once: replication does not bring it there.
pub async fn image_present(
    clients: &Clients,
    config: &Config,
    names: &Names,
    tag: &str,
    regions: &[&str],
    reporter: &dyn Progress,
) -> Result<(), Error> {
    let bound = Duration::from_secs(config.release.image_wait_secs);
    let mut pace = Pace::start();
    let mut said = false;
    for region in regions {
        loop {
            if has_image(clients, region, names, tag).await? {
                break;
            }
            if *region == config.primary_region {
                return Err(Error::InvalidState(format!(
                    "the image {}:{tag} is not in the repository in {region}; push it there first (the registry replicates it to the other regions)",
                    names.repository
                )));
            }
            if pace.elapsed() >= bound {
                return Err(Error::Timeout {
                    what: format!("the image {}:{tag} to replicate to {region}", names.repository),
                    after: bound,
                    last: "not there".into(),
                });
            }
            if !said {
                reporter.say(&format!("waiting for {}:{tag} to replicate to {region}", names.repository));
                said = true;
            }
            pace.pause(false, bound.saturating_sub(pace.elapsed())).await;
        }
    }
    Ok(())
}

pub async fn has_image(clients: &Clients, region: &str, names: &Names, tag: &str) -> Result<bool, Error> {
    let ecr: aws_sdk_ecr::Client = clients.get(region);
    match ecr
        .describe_images()
        .repository_name(&names.repository)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
    {
        Ok(out) => Ok(!out.image_details().is_empty()),
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_image_not_found_exception() || e.is_repository_not_found_exception()
            }) =>
        {
            Ok(false)
        }
        Err(e) => Err(e).op("DescribeImages"),
    }
}

/// Refuses an image whose scan in the primary region has findings at the configured severity
/// or worse, naming them; waits for a scan still running. `allow` (`--allow-vulnerable`) lets
/// it through, logged as a warning. An image with no scan at all is refused too: the gate
/// cannot vouch for it.
pub async fn scan(
    clients: &Clients,
    config: &Config,
    names: &Names,
    tag: &str,
    allow: bool,
    reporter: &dyn Progress,
) -> Result<(), Error> {
    let region = &config.primary_region;
    let ecr: aws_sdk_ecr::Client = clients.get(region);
    let threshold = SEVERITIES.iter().position(|s| *s == config.release.block_on_severity).unwrap_or(0);
    let bound = Duration::from_secs(config.release.image_wait_secs);
    let mut pace = Pace::start();
    let refuse = |problem: String| -> Result<(), Error> {
        if allow {
            tracing::warn!("--allow-vulnerable: releasing {}:{tag} although {problem}", names.repository);
            reporter.say(&format!(
                "warning: --allow-vulnerable: releasing {}:{tag} although {problem}",
                names.repository
            ));
            Ok(())
        } else {
            Err(Error::InvalidState(format!(
                "refusing to release {}:{tag}: {problem}. Fix the image, or pass --allow-vulnerable to release it anyway (logged)",
                names.repository
            )))
        }
    };
    loop {
        let out = ecr
            .describe_image_scan_findings()
            .repository_name(&names.repository)
            .image_id(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_scan_not_found_exception()) => {
                return refuse(format!(
                    "it has no scan in {region} (registry.scan_on_push is off, or it was pushed before), so its vulnerabilities are unknown"
                ));
            }
            Err(e) => return Err(e).op("DescribeImageScanFindings"),
        };
        match out.image_scan_status().and_then(|s| s.status()) {
            // Basic scanning reports COMPLETE; enhanced scanning (Amazon Inspector) reports
            // ACTIVE while it keeps scanning continuously, with its findings available
            // (DescribeImageScanFindings, ECR API reference: "ACTIVE" is a final status of an
            // enhanced scan, not one in progress).
            Some(ScanStatus::Complete) | Some(ScanStatus::Active) => {
                let findings = out.image_scan_findings();
                let counts = findings.and_then(|f| f.finding_severity_counts()).cloned().unwrap_or_default();
                let blocking: Vec<String> = SEVERITIES[..=threshold]
                    .iter()
                    .filter_map(|s| {
                        let n = counts.iter().find(|(k, _)| k.as_str() == *s).map(|(_, n)| *n).unwrap_or(0);
                        (n > 0).then(|| format!("{n} {s}"))
                    })
                    .collect();
                if blocking.is_empty() {
                    return Ok(());
                }
                let blocks =
                    |severity: Option<&str>| severity.is_some_and(|s| SEVERITIES[..=threshold].contains(&s));
                let basic = findings.map(|f| f.findings()).unwrap_or_default().iter().filter_map(|f| {
                    let severity = f.severity().map(|s| s.as_str());
                    blocks(severity)
                        .then(|| format!("{} ({})", f.name().unwrap_or("?"), severity.unwrap_or("?")))
                });
                // Enhanced scanning's findings: the vulnerability's ID, else the title.
                let enhanced =
                    findings.map(|f| f.enhanced_findings()).unwrap_or_default().iter().filter_map(|f| {
                        let name = f
                            .package_vulnerability_details()
                            .and_then(|d| d.vulnerability_id())
                            .or(f.title())
                            .unwrap_or("?");
                        blocks(f.severity()).then(|| format!("{name} ({})", f.severity().unwrap_or("?")))
                    });
                let named: Vec<String> = basic.chain(enhanced).take(5).collect();
                return refuse(format!(
                    "its scan in {region} found {} (release.block_on_severity = {}): {}",
                    blocking.join(", "),
                    config.release.block_on_severity,
                    named.join(", ")
                ));
            }
            Some(ScanStatus::InProgress) | Some(ScanStatus::Pending) if pace.elapsed() < bound => {
                pace.pause(false, bound.saturating_sub(pace.elapsed())).await;
            }
            other => {
                let status = other.map(|s| s.as_str().to_string()).unwrap_or_else(|| "unknown".into());
                return refuse(format!("its scan in {region} did not complete (status {status})"));
            }
        }
    }
}
