//! The edge: parse arguments, set up logging, resolve settings, run one command, render any
//! error once, and turn the result into an exit code.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use deployer::commands::{self, exit, OutputFormat, Session, Settings};
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, OutputArg};

fn main() -> ExitCode {
    // A usage error exits 1, as Terraform's do: 2 means "changes pending" (`plan
    // --detailed-exitcode`) or "drift found" (`drift`), and a typo in a cron line must not raise a
    // false drift alarm. `--help` and `--version` exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::ERROR } else { exit::OK });
        }
    };
    init_logging(cli.global.verbose, cli.global.quiet);
    let color = Color::from_env();
    miette::set_hook(Box::new(move |_| {
        // Wrapped at spaces only: a region (`us-east-2`), an ARN, a key, a URL or an image URI
        // is never split at its hyphens or slashes (it stays copyable).
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color.stderr)
                .break_words(false)
                .word_splitter(textwrap::WordSplitter::NoHyphenation)
                .word_separator(textwrap::WordSeparator::AsciiSpace)
                .build(),
        )
    }))
    .ok();

    // The deployer waits on AWS, not on its CPU: two workers keep a run's requests going
    // however many cores the machine has, and its memory the same on a 2-core laptop and on a
    // 64-core CI runner (each worker is a thread with its own stack and allocator arena).
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let env = cli.command.env().to_string();
    let command = cli.command.name();
    // `--output json`: one final report line, whatever happens (iam-policy's stdout is the
    // policy document itself).
    let json_report = matches!(cli.global.output, cli::OutputArg::Json) && command != "iam-policy";
    let (code, error) = runtime.block_on(async {
        tokio::select! {
            result = run(cli, color) => match result {
                Ok(code) => (code, None),
                Err(report) => {
                    eprintln!("{report:?}");
                    (exit::ERROR, Some(report.to_string()))
                }
            },
            _ = interrupted() => {
                if commands::at_prompt() {
                    eprintln!("\ninterrupted at the confirmation: nothing was changed.");
                    return (130, Some("interrupted at the confirmation: nothing was changed".to_string()));
                }
                eprintln!("\ninterrupted. If changes were being applied, some may be half done: run the same command again to finish (re-running converges).");
                if let Err(e) = deployer::lock::release_held_by_this_process().await {
                    eprintln!("could not release the environment lock: {e}; release it with `deployer unlock --env {env}`");
                }
                (130, Some("interrupted".to_string()))
            }
        }
    });
    if json_report {
        commands::write_report(command, &env, code, error);
    }
    // Don't wait for a blocking read (a confirmation prompt) that Ctrl-C interrupted.
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// Ctrl-C, or SIGTERM (a cancelled CI job): either way the run stops and lets go of its lock.
async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Colour where it lands on a terminal, unless `NO_COLOR` is set to something.
#[derive(Clone, Copy)]
struct Color {
    stdout: bool,
    stderr: bool,
}

impl Color {
    fn from_env() -> Color {
        let allowed = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Color {
            stdout: allowed && std::io::stdout().is_terminal(),
            stderr: allowed && std::io::stderr().is_terminal(),
        }
    }
}

async fn run(cli: Cli, color: Color) -> miette::Result<u8> {
    // Everything that can be checked without AWS is checked here, before any request.
    let mut config = deployer::config::load(&cli.global.config_dir, cli.command.env())?;
    if cli.global.no_assume_role {
        config.aws.role_arn = None;
        config.aws.external_id = None;
    }
    let release_args = match &cli.command {
        Command::Up { release, .. } | Command::Release { release, .. } => Some(release.clone()),
        _ => None,
    };
    let plan_image = match &cli.command {
        Command::Plan { image, .. } => image.clone(),
        _ => None,
    };
    if let Some(tag) = release_args.as_ref().and_then(|r| r.image.as_deref()).or(plan_image.as_deref()) {
        if let Some(problem) = deployer::config::docker_tag_problem(tag) {
            return Err(miette::miette!(
                "--image {tag:?} is not an image tag: it {problem}; nothing was done"
            ));
        }
        config.service.image_tag = tag.to_string();
    }
    if matches!(cli.command, Command::Release { .. } | Command::Rollback { .. }) && !config.service.enabled {
        return Err(miette::miette!(
            help = "set service.enabled = true (and run `deployer up`) first",
            "environment '{}' has no service to release to (service.enabled is false)",
            config.env
        ));
    }
    if let Command::Release { release, .. } = &cli.command {
        if release.image.is_none() {
            return Err(miette::miette!(
                help = format!("e.g. `deployer release --env {} --image 3f9c2ab`", config.env),
                "`deployer release` needs --image TAG: the image to release to every region (a plain `up` keeps the image each region runs)"
            ));
        }
    }
    if let Command::Failover { to, dns_only, .. } = &cli.command {
        if !config.region_names().contains(to) {
            return Err(miette::miette!(
                "--to {to}: environment '{}' has the regions {}",
                config.env,
                config.region_names().join(", ")
            ));
        }
        if *dns_only && !config.dns.enabled {
            return Err(miette::miette!(
                help = "set [dns] enabled = true and run `deployer up` first",
                "environment '{}' has no DNS failover records (dns.enabled is false)",
                config.env
            ));
        }
    }
    if let Command::Rollback { region: Some(region), .. } = &cli.command {
        if !config.region_names().contains(region) {
            return Err(miette::miette!(
                "--region {region}: environment '{}' has the regions {}",
                config.env,
                config.region_names().join(", ")
            ));
        }
    }
    let endpoint_url =
        std::env::var("AWS_ENDPOINT_URL").ok().filter(|s| !s.is_empty()).or(config.aws.endpoint_url.clone());
    deployer::cloud::init_time_scale(endpoint_url.is_some()).map_err(|e| miette::miette!("{e}"))?;
    let settings = Settings {
        config,
        output: match cli.global.output {
            OutputArg::Human => OutputFormat::Human,
            OutputArg::Json => OutputFormat::Json,
        },
        color_stdout: color.stdout,
        color_stderr: color.stderr,
        quiet: cli.global.quiet,
        endpoint_url,
        image_given: release_args.as_ref().is_some_and(|r| r.image.is_some()) || plan_image.is_some(),
        sts_region: match &cli.command {
            Command::Failover { to, dns_only: false, .. } => Some(to.clone()),
            _ => None,
        },
    };
    if let Command::IamPolicy { account: Some(account), .. } = &cli.command {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(miette::miette!("--account {account:?} is not an AWS account ID (12 digits)"));
        }
    }
    let session = Session::connect(settings).await;
    match cli.command {
        Command::Plan { detailed_exitcode, .. } => commands::plan(&session, detailed_exitcode).await,
        Command::Up { yes, release, .. } => commands::up(&session, yes, &release_options(&release)).await,
        Command::Release { yes, release, .. } => {
            commands::release(&session, yes, &release_options(&release)).await
        }
        Command::Failover { yes, to, dns_only, probe_secs, .. } => {
            commands::failover(&session, yes, &to, dns_only, std::time::Duration::from_secs(probe_secs)).await
        }
        Command::Rollback { yes, region, to, .. } => {
            commands::rollback(&session, yes, region.as_deref(), to.as_deref()).await
        }
        Command::Drift { .. } => commands::drift(&session).await,
        Command::Status { tier, region, only_problems, wide, .. } => {
            let filter = commands::StatusFilter { tier, region, only_problems, wide };
            commands::status(&session, &filter).await
        }
        Command::Destroy { yes, .. } => commands::destroy(&session, yes).await,
        Command::Unlock { yes, region, .. } => commands::unlock(&session, yes, region.as_deref()).await,
        Command::RotateDbPassword { yes, .. } => commands::rotate_db_password(&session, yes).await,
        Command::IamPolicy { account, split, boundary, .. } => {
            commands::iam_policy(&session, account.as_deref(), split, boundary).await
        }
    }
}

fn release_options(args: &cli::ReleaseArgs) -> deployer::release::Options {
    deployer::release::Options {
        allow_vulnerable: args.allow_vulnerable,
        rollback_all_on_failure: args.rollback_all_on_failure,
        image_given: args.image.is_some(),
    }
}

/// Logs go to stderr. Default: this crate's info (waits that take a while say so); `-q` errors
/// only; each `-v` one level more. `RUST_LOG` overrides all of it.
fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,deployer=info",
        (false, 1) => "info",
        (false, 2) => "info,deployer=debug",
        _ => "debug,deployer=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(Color::from_env().stderr)
        .init();
}
