//! One writer at a time: `up` and `destroy` hold an environment lock while they change
//! anything. The lock is an SSM parameter in the primary region, created with
//! `Overwrite=false`, which AWS creates atomically: the second writer gets
//! `ParameterAlreadyExists` and is told who holds the lock and how to release it.
//!
//! A run that finds nothing to change takes no lock, so a converged environment still sees
//! zero mutating calls.

use aws_sdk_ssm::types::{ParameterType, Tag};
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
}

pub async fn acquire(
    client: &aws_sdk_ssm::Client,
    app: &str,
    env: &str,
    holder: &Holder,
) -> Result<Lock, LockError> {
    let name = parameter_name(app, env);
    let value = serde_json::to_string(holder).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let tags = [(TAG_APP, app), (TAG_ENV, env), (TAG_MANAGED_BY, "deployer")]
        .into_iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| Error::InvalidRequest(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let put = client
        .put_parameter()
        .name(&name)
        .description("deployer environment lock: one writer at a time")
        .value(value)
        .r#type(ParameterType::String)
        // `Overwrite` left unset (false by default): the PutParameter API reference says tags
        // cannot be sent with it, and an existing parameter (the lock held) is refused either way.
        .set_tags(Some(tags))
        .send()
        .await
        .op_unless("PutParameter", |e| e.is_parameter_already_exists());
    let held = || {
        *ACTIVE.lock().expect("active lock") = Some((client.clone(), name.clone()));
        Ok(Lock { client: client.clone(), name: name.clone() })
    };
    match put? {
        Some(_) => held(),
        None => match holder_of(client, app, env).await? {
            // Our own put, applied but its response lost: the SDK's retry was refused because
            // the first attempt had already taken the lock.
            Some(Ok(h)) if h == *holder => held(),
            Some(Ok(h)) => Err(LockError::Held(h)),
            Some(Err(raw)) => Err(LockError::HeldUnreadable(raw)),
            // Released between our put and our read: say so rather than retry silently.
            None => Err(LockError::HeldUnreadable("released just now; run again".into())),
        },
    }
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
    pub async fn release(self) -> Result<(), Error> {
        ACTIVE.lock().expect("active lock").take();
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
    }
}
