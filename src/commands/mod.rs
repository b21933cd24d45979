//! The commands: each takes its arguments, runs its workflow in a [`Session`] (`src/session.rs`:
//! observe, plan, lock, apply, verify) or in `release`, asks when it must, and renders what
//! happened (text on stderr and stdout, or JSON lines). They never see clap; the edge hands
//! them a resolved [`Settings`].

mod destroy;
mod drift;
mod failover;
mod iam_policy;
mod plan;
mod release;
mod rotate;
mod status;
mod unlock;
mod up;

pub use destroy::destroy;
pub use drift::drift;
pub use failover::failover;
pub use iam_policy::iam_policy;
pub use plan::plan;
pub use release::{release, rollback};
pub use rotate::rotate_db_password;
pub use status::{status, StatusFilter};
pub use unlock::unlock;
pub use up::up;

use std::io::{BufRead, IsTerminal, Write};

use miette::{miette, IntoDiagnostic};
use serde::Serialize;

use crate::cloud::CallSummary;
use crate::engine::{Outcome, Status};
use crate::plan::Plan;
use crate::session::credentials_hint;
pub use crate::session::{LockReport, OutputFormat, Session, Settings, VERIFY_ROUNDS};

/// Exit codes are an interface (README, "Exit codes").
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    /// Changes pending (`plan --detailed-exitcode`) or drift found (`drift`).
    pub const CHANGES: u8 = 2;
    /// A release failed or was stopped, and CodeDeploy's automatic rollback has finished.
    pub const RELEASE_FAILED: u8 = 3;
}

/// Set while a confirmation waits for its answer: Ctrl-C then means nothing was started.
static AT_PROMPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the run is waiting at a confirmation prompt (nothing changed yet).
pub fn at_prompt() -> bool {
    AT_PROMPT.load(std::sync::atomic::Ordering::SeqCst)
}

/// Asks on the terminal before changing anything; refuses without `--yes` off a terminal.
/// The answer is read on a blocking thread, so Ctrl-C at the prompt still ends the run.
async fn confirm(question: &str, assume_yes: bool) -> miette::Result<bool> {
    if assume_yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = "pass --yes to confirm non-interactively (CI, scripts)",
            "refusing to make changes without confirmation: standard input is not a terminal"
        ));
    }
    // Flagged before the question shows: a Ctrl-C from someone who has read it is one at the
    // prompt.
    AT_PROMPT.store(true, std::sync::atomic::Ordering::SeqCst);
    eprint!("{question} Only 'yes' will be accepted: ");
    std::io::stderr().flush().into_diagnostic()?;
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).map(|_| answer)
    })
    .await;
    AT_PROMPT.store(false, std::sync::atomic::Ordering::SeqCst);
    let answer = answer.into_diagnostic()?.into_diagnostic()?;
    Ok(answer.trim() == "yes")
}

// The `--output json` contract (docs/output.md, docs/output.schema.json): stdout is JSON Lines.
// Events come first, as they happen, each an object with a `"type"` (`deployment`, `message`);
// then exactly one object with `"type": "report"`, written by `main` when the command ends,
// however it ends (an error too: `ok` false, `exit_code`, `error`). A command adds what its
// report holds with [`report`] as it goes; the pieces are merged into that one object.
static REPORT: std::sync::Mutex<Option<serde_json::Map<String, serde_json::Value>>> =
    std::sync::Mutex::new(None);

/// Adds `value`'s fields to the command's final JSON report (`--output json`).
fn report<T: Serialize>(value: &T) -> miette::Result<()> {
    let value = serde_json::to_value(value).into_diagnostic()?;
    let serde_json::Value::Object(fields) = value else {
        return Err(miette!("a report must be a JSON object"));
    };
    REPORT.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Default::default).extend(fields);
    Ok(())
}

/// Adds one field to the command's final JSON report.
fn report_field<T: Serialize>(key: &str, value: &T) -> miette::Result<()> {
    let mut fields = serde_json::Map::new();
    fields.insert(key.into(), serde_json::to_value(value).into_diagnostic()?);
    report(&fields)
}

/// Writes one event line (`{"type": kind, …fields}`) on stdout, at once.
pub fn json_event(kind: &str, fields: serde_json::Value) {
    let mut line = serde_json::Map::new();
    line.insert("type".into(), kind.into());
    if let serde_json::Value::Object(f) = fields {
        line.extend(f);
    }
    emit(&format!("{}\n", serde_json::Value::Object(line)));
}

/// Writes the command's one final report line: what it added, with `type`, `command`, `env`,
/// `exit_code`, `ok` (the exit code is 0) and, when it failed, `error`.
pub fn write_report(command: &str, env: &str, exit_code: u8, error: Option<String>) {
    let mut fields = REPORT.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
    fields.insert("type".into(), "report".into());
    fields.insert("command".into(), command.into());
    fields.insert("env".into(), env.into());
    fields.insert("exit_code".into(), exit_code.into());
    fields.insert("ok".into(), (exit_code == 0).into());
    if let Some(error) = error {
        fields.insert("error".into(), error.into());
    }
    // Keys in a fixed order, the same for every command: `type` first.
    let mut line = serde_json::Map::new();
    for key in ["type", "command", "env", "ok", "exit_code", "error"] {
        if let Some(v) = fields.remove(key) {
            line.insert(key.into(), v);
        }
    }
    line.extend(fields);
    emit(&format!("{}\n", serde_json::Value::Object(line)));
}

/// Writes data to stdout. A closed pipe (`deployer status | head`) is the reader's choice,
/// not an error.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::error!("cannot write to standard output: {e}");
        }
    }
}

/// The report of a run that changed things (`up`, `destroy`), for `--output json`.
#[derive(Serialize)]
struct ApplyReport<'a> {
    /// Every change was made (the report's `ok` is the whole command's).
    applied: bool,
    plan: &'a Plan,
    outcomes: &'a [Outcome],
    calls: CallSummary,
    elapsed_secs: f64,
}

/// Prints the summary of an applied plan and says whether it all went through.
fn finish(session: &Session, command: &str, plan: &Plan, outcomes: &[Outcome]) -> miette::Result<u8> {
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != Status::Done).collect();
    let ok = failed.is_empty();
    if session.settings.output == OutputFormat::Json {
        // The report's `plan` and `outcomes` (an `up`'s release adds `release`).
        report(&ApplyReport {
            applied: ok,
            plan,
            outcomes,
            calls: session.calls(),
            elapsed_secs: session.elapsed(),
        })?;
    }
    let calls = session.calls();
    let n = plan.counts();
    eprintln!(
        "\n{command}: {} created, {} updated, {} replaced, {} deleted in {:.1}s ({} AWS reads, {} changes sent).",
        outcomes.iter().filter(|o| o.status == Status::Done && o.action == crate::plan::Action::Create).count(),
        outcomes.iter().filter(|o| o.status == Status::Done && o.action == crate::plan::Action::Update).count(),
        outcomes
            .iter()
            .filter(|o| o.status == Status::Done && o.action == crate::plan::Action::Replace && o.step == "apply")
            .count(),
        outcomes.iter().filter(|o| o.status == Status::Done && o.action == crate::plan::Action::Delete).count(),
        session.elapsed(),
        calls.reads,
        calls.mutating,
    );
    if ok {
        return Ok(exit::OK);
    }
    let _ = n;
    let list: Vec<String> = failed.iter().map(|o| format!("  {} ({})", o.address, o.status.text())).collect();
    Err(miette!(
        help = "everything that succeeded is kept and tagged; fix the cause and run the same command again to finish",
        "{} of {} changes did not complete:\n{}",
        failed.len(),
        outcomes.len(),
        list.join("\n")
    ))
}
