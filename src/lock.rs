//! One writer at a time: `up` and `destroy` hold an environment lock while they change
//! anything. The lock is an SSM parameter in the primary region, created with
//! `Overwrite=false`, which AWS creates atomically: the second writer gets
//! `ParameterAlreadyExists` and is told who holds the lock and how to release it.
//!
//! A run that finds nothing to change takes no lock, so a converged environment still sees
//! zero mutating calls.
//!
//! **The generation.** A second parameter, `/deployer/{app}/{env}/generation`, lives as long as
//! the environment (`destroy` removes it). Every holder overwrites it as soon as it holds the
//! lock (value `held …`) and again as it lets go (`free`), so its version grows by at least one
//! with every holder. A run that read the lock and the generation ([`Fence`], one
//! `GetParameters`) before reading the environment knows, once it holds the lock itself, whether
//! any holder came or went since: if the lock was free then, the generation was `free`, and its
//! own overwrite made version *v + 1* (PutParameter answers the version it wrote, and "when you
//! change the value of the parameter, Parameter Store automatically increments the version
//! number by one": SSM user guide, "Working with parameter versions"; each write here changes
//! the value, `held` with the holder and the time, then `free`),
//! nobody wrote in between, and what it read is what AWS holds. `up --yes` and `destroy --yes`
//! then plan under the lock from that read instead of reading the environment again
//! ([`Fence::unchanged_at`]).
//! Anything else (a holder since, a crashed holder's `held`, a lost answer that made the
//! version jump, an unreadable parameter) means reading again, as before. A stale answer to the
//! fence's read can only show an older version, which fails the check: it errs on the side of
//! reading again. Only writers that take the lock are seen this way; a change made outside the
//! deployer between the read and the lock is not, as a change made during the apply never was,
//! and the verification after the apply reads the environment again either way.

use aws_sdk_ssm::types::{ParameterType, ResourceTypeForTagging, Tag};
use serde::{Deserialize, Serialize};

use crate::cloud::{AwsResultExt, Error};
use crate::resources::{TAG_APP, TAG_ENV, TAG_MANAGED_BY};

/// Who holds the lock, stored as the parameter's JSON value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@host`.
    pub who: String,
    pub pid: u32,
    /// The command that took it, e.g. `up`.
    pub command: String,
    /// Seconds since the Unix epoch.
    pub since: u64,
}

impl Holder {
    pub fn this_process(command: &str) -> Holder {
        let user =
            std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown-host".into());
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Holder { who: format!("{user}@{host}"), pid: std::process::id(), command: command.to_string(), since }
    }

    pub fn describe(&self) -> String {
        let age = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(self.since))
            .unwrap_or_default();
        let gone = if self.process_gone() == Some(true) {
            "; that process is no longer running on this host: the run crashed or was killed"
        } else {
            ""
        };
        format!("{} (`deployer {}`, pid {}) for {}{gone}", self.who, self.command, self.pid, human_age(age))
    }

    /// Whether the holding process is gone: `Some` only when it ran on this host (same
    /// `user@host`) and the process table can be read. The lock is never taken over on this
    /// basis: a PID is reused, and two machines can share a host name (containers); the
    /// operator decides with `deployer unlock`.
    pub fn process_gone(&self) -> Option<bool> {
        let here = Holder::this_process(&self.command);
        if here.who != self.who || !std::path::Path::new("/proc/self").exists() {
            return None;
        }
        Some(!std::path::Path::new(&format!("/proc/{}", self.pid)).exists())
    }
}

fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The parameter that holds an environment's lock.
pub fn parameter_name(app: &str, env: &str) -> String {
    format!("/deployer/{app}/{env}/lock")
}

/// The parameter whose version counts the environment's lock holders (module doc).
pub fn generation_name(app: &str, env: &str) -> String {
    format!("/deployer/{app}/{env}/generation")
}

/// The generation's value while nobody holds the lock.
const FREE: &str = "free";

/// The lock and the generation, read together before a read of the environment.
#[derive(Clone, Debug, Default)]
pub struct Fence {
    /// The lock's holder, if it was held: `Ok` when its value parses, `Err(raw)` otherwise.
    pub holder: Option<Result<Holder, String>>,
    /// The generation's version, and whether its value was `free`; `None` if it did not exist.
    generation: Option<(i64, bool)>,
}

impl Fence {
    /// Whether a read of the environment made after this fence still holds once this process
    /// holds the lock and its overwrite of the generation wrote version `bumped`: nobody held the
    /// lock then, and nobody took it since. A generation that did not exist proves that only for
    /// a read that found nothing of the environment (`read_nothing`): `destroy` deletes it, so
    /// a destroy that came and went would leave this run creating version 1 as well, but it had
    /// nothing to remove that such a read saw. (An environment made before generations existed
    /// is read again under its first lock; the next run counts from the generation it leaves.)
    pub fn unchanged_at(&self, bumped: i64, read_nothing: bool) -> bool {
        self.holder.is_none()
            && match self.generation {
                None => read_nothing && bumped == 1,
                Some((version, free)) => free && bumped == version + 1,
            }
    }

    /// Whether the generation exists and the lock is not held: what `destroy` may remove
    /// without pulling it from under a holder (a `held` one with no lock is a killed run's).
    pub fn forgettable(&self) -> bool {
        self.holder.is_none() && self.generation.is_some()
    }
}

/// Reads the lock and the generation in one `GetParameters`; a name that does not exist is
/// simply not among the parameters it answers.
pub async fn fence(client: &aws_sdk_ssm::Client, app: &str, env: &str) -> Result<Fence, Error> {
    let (lock, generation) = (parameter_name(app, env), generation_name(app, env));
    let out = client.get_parameters().names(&lock).names(&generation).send().await.op("GetParameters")?;
    let mut fence = Fence::default();
    for p in out.parameters() {
        let value = p.value().unwrap_or_default();
        if p.name() == Some(lock.as_str()) {
            fence.holder = Some(serde_json::from_str(value).map_err(|_| value.to_string()));
        } else if p.name() == Some(generation.as_str()) {
            fence.generation = Some((p.version(), value == FREE));
        }
    }
    Ok(fence)
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("environment is locked by {}", .0.describe())]
    Held(Holder),
    #[error("environment is locked by a holder that cannot be read ({0})")]
    HeldUnreadable(String),
    #[error(transparent)]
    Aws(#[from] Error),
}

/// A held lock. Release it with [`Lock::release`]; a process that dies holding it leaves it
/// in place, and `deployer unlock` removes it.
pub struct Lock {
    client: aws_sdk_ssm::Client,
    name: String,
    generation: String,
    /// The environment's app and env, to tag the generation should a write recreate it.
    app: String,
    env: String,
    /// The generation's version this holder's overwrite wrote.
    pub bumped: i64,
}

/// Takes the lock, then overwrites the generation (module doc). `fence`, when the caller read
/// one, says whether the generation exists, so that it is created (with its tags) or
/// overwritten in one call.
pub async fn acquire(
    client: &aws_sdk_ssm::Client,
    app: &str,
    env: &str,
    holder: &Holder,
    fence: Option<&Fence>,
) -> Result<Lock, LockError> {
    let name = parameter_name(app, env);
    let value = serde_json::to_string(holder).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let tags = tags(app, env)?;
    let put = client
        .put_parameter()
        .name(&name)
        .description("deployer environment lock: one writer at a time")
        .value(&value)
        .r#type(ParameterType::String)
        // `Overwrite` left unset (false by default): the PutParameter API reference says tags
        // cannot be sent with it, and an existing parameter (the lock held) is refused either way.
        .set_tags(Some(tags))
        .send()
        .await
        .op_unless("PutParameter", |e| e.is_parameter_already_exists());
    match put? {
        Some(_) => {}
        None => match holder_of(client, app, env).await? {
            // Our own put, applied but its response lost: the SDK's retry was refused because
            // the first attempt had already taken the lock.
            Some(Ok(h)) if h == *holder => {}
            Some(Ok(h)) => return Err(LockError::Held(h)),
            Some(Err(raw)) => return Err(LockError::HeldUnreadable(raw)),
            // Released between our put and our read: say so rather than retry silently.
            None => return Err(LockError::HeldUnreadable("released just now; run again".into())),
        },
    }
    *ACTIVE.lock().expect("active lock") = Some((client.clone(), name.clone()));
    let generation = generation_name(app, env);
    let exists = fence.map(|f| f.generation.is_some());
    // A holder that did not count itself could change the environment unseen by a reader's
    // fence: no generation, no lock.
    match write_generation(client, &generation, &format!("held {value}"), exists, app, env).await {
        Ok(bumped) => {
            Ok(Lock { client: client.clone(), name, generation, app: app.into(), env: env.into(), bumped })
        }
        Err(e) => {
            ACTIVE.lock().expect("active lock").take();
            if let Err(e) = delete(client, &name).await {
                tracing::error!("could not release the environment lock: {e}");
            }
            Err(LockError::Aws(e))
        }
    }
}

fn tags(app: &str, env: &str) -> Result<Vec<Tag>, Error> {
    [(TAG_APP, app), (TAG_ENV, env), (TAG_MANAGED_BY, "deployer")]
        .into_iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| Error::InvalidRequest(e.to_string()))
        })
        .collect()
}

/// Writes the generation and returns the version written. It is created with the environment's
/// tags where it does not exist yet (`exists` false or unknown: PutParameter refuses tags
/// with `Overwrite`), and overwritten otherwise.
async fn write_generation(
    client: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    exists: Option<bool>,
    app: &str,
    env: &str,
) -> Result<i64, Error> {
    let put = || client.put_parameter().name(name).value(value).r#type(ParameterType::String);
    if exists != Some(true) {
        let created = put()
            .description("deployer: counts the environment's lock holders")
            .set_tags(Some(tags(app, env)?))
            .send()
            .await
            .op_unless("PutParameter", |e| e.is_parameter_already_exists())?;
        if let Some(out) = created {
            return Ok(out.version());
        }
    }
    let version = put().overwrite(true).send().await.op("PutParameter")?.version();
    if version == 1 {
        // It was gone after all (a `destroy` deleted it since the fence was read), and an
        // overwrite carries no tags: it is tagged now, so nothing of the environment is untagged.
        client
            .add_tags_to_resource()
            .resource_type(ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .set_tags(Some(tags(app, env)?))
            .send()
            .await
            .op("AddTagsToResource")?;
    }
    Ok(version)
}

/// Deletes the generation (`destroy`, in each region of the environment).
pub async fn forget_generation(client: &aws_sdk_ssm::Client, app: &str, env: &str) -> Result<(), Error> {
    delete(client, &generation_name(app, env)).await
}

/// The current holder, if the lock is held: `Ok` when its value parses, `Err(raw)` otherwise.
pub async fn holder_of(
    client: &aws_sdk_ssm::Client,
    app: &str,
    env: &str,
) -> Result<Option<Result<Holder, String>>, Error> {
    let got = client
        .get_parameter()
        .name(parameter_name(app, env))
        .send()
        .await
        .op_unless("GetParameter", |e| e.is_parameter_not_found())?;
    Ok(got.map(|out| {
        let raw = out.parameter().and_then(|p| p.value()).unwrap_or_default().to_string();
        serde_json::from_str(&raw).map_err(|_| raw)
    }))
}

/// Removes the lock whoever holds it (`deployer unlock`). Returns false if there was none.
pub async fn force_release(client: &aws_sdk_ssm::Client, app: &str, env: &str) -> Result<bool, Error> {
    let deleted = client
        .delete_parameter()
        .name(parameter_name(app, env))
        .send()
        .await
        .op_unless("DeleteParameter", |e| e.is_parameter_not_found())?;
    Ok(deleted.is_some())
}

impl Lock {
    /// Marks the generation `free`, then deletes the lock. A generation that cannot be written
    /// stays `held`: the next run's fence then reads the environment again, which is safe.
    pub async fn release(self) -> Result<(), Error> {
        ACTIVE.lock().expect("active lock").take();
        if let Err(e) =
            write_generation(&self.client, &self.generation, FREE, Some(true), &self.app, &self.env).await
        {
            tracing::warn!("could not mark the environment's lock generation free: {e}");
        }
        delete(&self.client, &self.name).await
    }
}

async fn delete(client: &aws_sdk_ssm::Client, name: &str) -> Result<(), Error> {
    client
        .delete_parameter()
        .name(name)
        .send()
        .await
        .op_unless("DeleteParameter", |e| e.is_parameter_not_found())?;
    Ok(())
}

/// The lock this process holds, so an interrupted run (Ctrl-C) can still let go of it.
static ACTIVE: std::sync::Mutex<Option<(aws_sdk_ssm::Client, String)>> = std::sync::Mutex::new(None);

/// Releases the lock this process holds, if any (the interrupt path: the run's own futures
/// are dropped, so nothing it started continues).
pub async fn release_held_by_this_process() -> Result<bool, Error> {
    let held = ACTIVE.lock().expect("active lock").take();
    match held {
        Some((client, name)) => delete(&client, &name).await.map(|_| true),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_says_who_and_since_when() {
        let mut h = Holder::this_process("up");
        h.since -= 300;
        let text = h.describe();
        assert!(text.contains("`deployer up`") && text.contains("for 5m"), "{text}");
        assert_eq!(parameter_name("webapp", "prod"), "/deployer/webapp/prod/lock");
        assert_eq!(generation_name("webapp", "prod"), "/deployer/webapp/prod/generation");
    }

    #[test]
    fn a_read_holds_only_when_nobody_held_or_took_the_lock_since() {
        let holder = Some(Ok(Holder::this_process("up")));
        let fence = |holder: Option<Result<Holder, String>>, generation| Fence { holder, generation };
        // The environment's first holder creates the generation: version 1.
        assert!(fence(None, None).unchanged_at(1, true));
        assert!(!fence(None, None).unchanged_at(1, false), "a destroy may have deleted it since");
        assert!(!fence(None, None).unchanged_at(2, true), "created by another holder since");
        assert!(fence(None, Some((6, true))).unchanged_at(7, false));
        assert!(!fence(None, Some((6, true))).unchanged_at(8, false), "a holder came and went since");
        assert!(!fence(None, Some((6, true))).unchanged_at(6, false));
        assert!(!fence(None, Some((7, false))).unchanged_at(8, false), "held then (or its holder crashed)");
        assert!(!fence(holder.clone(), Some((6, true))).unchanged_at(7, false), "the lock was held then");
        assert!(!fence(Some(Err("?".into())), None).unchanged_at(1, true));
    }
}
