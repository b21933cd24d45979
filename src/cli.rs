//! The command line: clap types only. `main.rs` turns these into `Settings`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Build and run a web service on AWS across regions, by calling the AWS APIs directly.
///
/// Every command works on one environment (`--env`): `config/base.toml` merged with
/// `config/<env>.toml`. Try it against the local emulator first: `scripts/emulator`, then
/// `deployer plan --env local` to see what `up` would do.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, propagate_version = true, max_term_width = 100)]
#[command(
    after_help = "Exit codes: 0 success / no changes, 1 error, 2 changes or drift present, 3 a release failed \
(rolled back), 130 interrupted.\n\
Credentials come from the standard AWS chain (env vars, AWS_PROFILE, SSO, …).\n\
AWS_ENDPOINT_URL points every call at an emulator, e.g. the one `scripts/emulator` starts."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory holding base.toml and <env>.toml.
    #[arg(long, global = true, value_name = "DIR", env = "DEPLOYER_CONFIG_DIR", default_value = "config")]
    pub config_dir: PathBuf,

    /// `human` for people (plan and progress), `json` for machines (on stdout).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputArg::Human)]
    pub output: OutputArg,

    /// More logging (-v info details, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Quieter: no plan and no per-change progress lines; summaries, failures (FAIL, skip) and
    /// warnings still print. `drift -q` (for cron) prints nothing when nothing drifted and one
    /// line per drifted resource otherwise.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// Use the credentials at hand as they are, even where the environment's config sets
    /// `aws.role_arn`. The scheduled drift check runs with this: its task already holds a
    /// read-only role in the environment's account, and must not assume the deployer's.
    #[arg(long, global = true, env = "DEPLOYER_NO_ASSUME_ROLE")]
    pub no_assume_role: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputArg {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct EnvArg {
    /// The environment: a file config/<ENV>.toml (dev, staging, prod, local).
    #[arg(long, short = 'e', value_name = "ENV")]
    pub env: String,
}

#[derive(Debug, Clone, Args)]
pub struct ReleaseArgs {
    /// The image tag to release to every region. The configuration is not written: a later
    /// `up` without --image keeps what each region runs (`service.image_tag` is only a new
    /// region's first image).
    #[arg(long, value_name = "TAG")]
    pub image: Option<String>,
    /// Release even when the image's scan has findings at `release.block_on_severity` (logged).
    #[arg(long)]
    pub allow_vulnerable: bool,
    /// When a region fails, also roll back the regions released earlier in this run.
    #[arg(long)]
    pub rollback_all_on_failure: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `up` would change, changing nothing.
    ///
    /// Reads every region and compares them with the configuration: `+` create, `~` update in
    /// place, `-/+` replace, `-` delete (resources tagged for the environment that the
    /// configuration no longer asks for).
    #[command(
        after_help = "Examples:\n  deployer plan --env prod\n  deployer plan --env prod --output json\n  deployer plan --env prod --detailed-exitcode   # exit 2 when there are changes\n  deployer plan --env prod --image v42           # what `up --image v42` would do"
    )]
    Plan {
        #[command(flatten)]
        env: EnvArg,
        /// Exit 2 when there are changes, 0 when there are none (1 stays an error).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Preview `up --image TAG`: the release of TAG to every region (without it, the
        /// preview keeps what each region runs, as a plain `up` does).
        #[arg(long, value_name = "TAG")]
        image: Option<String>,
    },

    /// Converge every region to the configuration, then release the application.
    ///
    /// Shows the plan, asks for confirmation (or takes --yes), then applies the changes as a
    /// dependency graph across regions, each change waited on until the resource is usable.
    /// Then, where a region's service does not run the desired revision (the task definition
    /// with --image, or without it the image the region runs now: a plain `up` never changes
    /// the running version), releases it through CodeDeploy blue/green: the
    /// primary first, a bake time watching the alarms, then each secondary. The first failed
    /// region ends the run with exit 3 after CodeDeploy rolled it back; later regions are not
    /// touched. Running it again is safe: a converged environment gets no changes at all, and a
    /// run interrupted at any point (a release included) is finished by the next one.
    #[command(
        after_help = "Examples:\n  deployer up --env staging\n  deployer up --env prod --image 3f9c2ab --yes\n  deployer up --env local --yes"
    )]
    Up {
        #[command(flatten)]
        env: EnvArg,
        /// Apply without asking. Required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        release: ReleaseArgs,
    },

    /// Release an image (--image TAG, required) without changing any infrastructure.
    ///
    /// The release step of `up` alone: the image must be in each region's repository and pass
    /// the scan gate; then region by region, the primary first, through CodeDeploy blue/green,
    /// each secondary after the primary has run it for `release.bake_secs` with quiet alarms.
    #[command(after_help = "Example:\n  deployer release --env prod --image 3f9c2ab --yes")]
    Release {
        #[command(flatten)]
        env: EnvArg,
        /// Release without asking. Required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        release: ReleaseArgs,
    },

    /// Undo a release: stop one in flight, or go back to the previous good revision.
    ///
    /// In flight: stops the deployment with CodeDeploy's rollback and waits for it. Finished:
    /// deploys the newest earlier revision that succeeded, from each region's deployment
    /// history (or the one whose image is tagged --to). Secondaries first, then the primary.
    /// The configuration is not changed, and a later plain `up` keeps the image each region
    /// runs after the rollback (only `up --image` or `release --image` change it).
    #[command(
        after_help = "Examples:\n  deployer rollback --env prod\n  deployer rollback --env prod --region us-east-2 --yes\n  deployer rollback --env prod --to 1a2b3c4 --yes"
    )]
    Rollback {
        #[command(flatten)]
        env: EnvArg,
        /// Only this region (default: every region).
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// The image tag to go back to (it must have been released successfully before).
        #[arg(long, value_name = "TAG")]
        to: Option<String>,
        /// Roll back without asking. Required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
    },

    /// Check, read-only, whether AWS still matches the configuration.
    ///
    /// Exit 0 when it does, 2 when anything drifted (each resource named), 1 on error: made to
    /// run from cron or CI. `deployer up` repairs what it finds.
    #[command(after_help = "Example:\n  deployer drift --env prod || alert \"prod drifted\"")]
    Drift {
        #[command(flatten)]
        env: EnvArg,
    },

    /// Show what exists where, per region, and whether each resource is in sync.
    ///
    /// One line per resource: its address, a short ID (the resource part of an ARN; the full
    /// IDs with --wide or in --output json), AWS's state, and whether it matches the
    /// configuration (`differs`, `missing`, `orphan`, `duplicate` and `in progress` are
    /// coloured on a terminal). Lines fit the terminal unless --wide.
    #[command(
        after_help = "Examples:\n  deployer status --env prod\n  deployer status --env prod --only-problems\n  deployer status --env prod --tier service --region us-east-2 --wide\n  deployer status --env prod --output json"
    )]
    Status {
        #[command(flatten)]
        env: EnvArg,
        /// Only the resources of this tier (network, peering, registry, database, service,
        /// iam, release, dns, monitoring, drift).
        #[arg(long, value_name = "TIER")]
        tier: Option<String>,
        /// Only this region (or `global` for IAM and Route 53).
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// Only what is not in sync (differs, missing, orphan, duplicate, in progress).
        #[arg(long)]
        only_problems: bool,
        /// Full IDs (ARNs), however wide the lines get.
        #[arg(long)]
        wide: bool,
    },

    /// Delete everything the environment owns, in every region.
    ///
    /// Every tier: the drift schedule, monitoring, DNS records and health checks, the releases'
    /// CodeDeploy resources, the services, load balancers and certificates (and their DNS
    /// validation records), the roles and their boundary, the databases (a final snapshot
    /// unless `database.skip_final_snapshot`), the registry (kept when it holds images and
    /// `registry.keep_on_destroy` is set), then the network. Dependents go first, each waited
    /// on until AWS lets go of it. The plan marks what holds data (databases, images, log
    /// events). Asks on a terminal; needs --yes anywhere else.
    #[command(after_help = "Example:\n  deployer destroy --env dev --yes")]
    Destroy {
        #[command(flatten)]
        env: EnvArg,
        /// Delete without asking. Required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
    },

    /// Disaster recovery: make a secondary region the primary, its database included.
    ///
    /// Without --dns-only (the primary region or its database is lost): probes every region
    /// (a region that does not answer within --probe-secs is named and left out: nothing waits
    /// on it), takes the lock in REGION, promotes REGION's read replica to a standalone primary
    /// (it stops replicating for good; writes not yet replicated are lost), makes REGION's copy
    /// of the database's secret standalone (the password does not change), tags the database as
    /// REGION's primary, points REGION's application at it (a new task definition revision
    /// released through REGION's deployment group, same image) and makes REGION's DNS records
    /// PRIMARY. Nothing of it needs the failed region or a global control plane: no IAM change,
    /// and when Route 53's API does not answer (us-east-1 down) the DNS step is left to the
    /// health checks, which already send users to the healthy region. Shows the steps left,
    /// asks (or takes --yes); each step is skipped when already done, so running it again after
    /// a crash finishes the job and a finished failover changes nothing. Afterwards `plan`
    /// shows how the configuration and AWS differ and `up` refuses until `[regions] primary =
    /// "REGION"` makes it permanent (docs/runbooks/regional-failover.md).
    ///
    /// With --dns-only (an outage in front of a healthy database): switches only the Route 53
    /// failover records, REGION's PRIMARY and the old primary's SECONDARY, and waits until Route
    /// 53 has the change everywhere. To keep it, set `[dns] primary = "REGION"` (until then `plan`
    /// and `drift` show the records, and `up` would switch them back).
    #[command(
        after_help = "Examples:\n  deployer failover --env prod --to us-east-2            # promote the replica, move the app and DNS\n  deployer failover --env prod --to us-east-2 --yes\n  deployer failover --env prod --to us-east-2 --dns-only # the records only"
    )]
    Failover {
        #[command(flatten)]
        env: EnvArg,
        /// The secondary region that becomes the primary (with --dns-only: the region whose
        /// records become PRIMARY).
        #[arg(long, value_name = "REGION")]
        to: String,
        /// Only switch the DNS records; the database and the application are not touched.
        #[arg(long)]
        dns_only: bool,
        /// How long each region's probe may take before the region counts as unreachable.
        #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120))]
        probe_secs: u64,
        /// Fail over without asking. Required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
    },

    /// Rotate the database's master password, and give every region's tasks the new one.
    ///
    /// Secrets Manager makes a new password, kept as pending in the environment's secret
    /// (replicated to every region); the primary takes it (ModifyDBInstance, at once; replicas
    /// follow); the secret's password becomes it; then each region's service gets new tasks of
    /// the revision it runs (the same image), one region after the other. Each step resumes
    /// where a crash left it: running it again finishes an interrupted rotation, and starts a
    /// new one once the last is finished. The password is never printed. Until a region's
    /// tasks are replaced they cannot open new database connections (open ones keep working):
    /// see docs/runbooks/database.md. Takes the environment lock.
    #[command(
        name = "rotate-db-password",
        after_help = "Example:\n  deployer rotate-db-password --env prod\n  deployer rotate-db-password --env prod --yes"
    )]
    RotateDbPassword {
        #[command(flatten)]
        env: EnvArg,
        /// Rotate without asking. Required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
    },

    /// Print the least-privilege IAM policy the deployer needs for this environment.
    ///
    /// Every action `up`, `release`, `rollback`, `failover`, `drift`, `status` and `destroy`
    /// send for the environment as configured, as one IAM policy document (JSON on stdout):
    /// changes scoped to the environment's ARNs, `{app}-{env}` names and IAM path where AWS can
    /// scope them, EC2's and the few others' to the environment's regions; reads of every kind
    /// (each run observes them all). Attach it to the role the deployer runs as, or that
    /// `aws.role_arn` names (the identity that assumes it needs only `sts:AssumeRole` on it).
    /// It describes this configuration: regenerate it when the configuration changes, and keep
    /// the old one until the `up` that removes a tier you turned off has run.
    ///
    /// The policy lets the deployer create roles and write their policies only while they carry
    /// the environment's permissions boundary (`{app}-{env}-boundary` under the IAM path), and
    /// never change that boundary: otherwise its credentials could make a role that does
    /// anything. The first `up` (which creates the boundary), and an `up` that widens what a
    /// role may do, run with administrator credentials; `--boundary` prints the boundary's
    /// document, for an administrator who creates it by hand.
    #[command(
        name = "iam-policy",
        after_help = "Examples:\n  deployer iam-policy --env prod > deployer-prod-policy.json\n  deployer iam-policy --env prod --account 123456789012   # without credentials\n  deployer iam-policy --env prod --split                  # managed policies of at most 6,144 characters\n  deployer iam-policy --env prod --boundary               # the roles' permissions boundary"
    )]
    IamPolicy {
        #[command(flatten)]
        env: EnvArg,
        /// The account the environment lives in (default: read with STS GetCallerIdentity,
        /// after assuming aws.role_arn if set).
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Print a JSON array of policy documents, each within IAM's 6,144-character limit
        /// for a managed policy, to attach together (one document is larger than that).
        #[arg(long, conflicts_with = "boundary")]
        split: bool,
        /// Print the permissions boundary every role of the environment carries (the managed
        /// policy `{app}-{env}-boundary`), instead of the deployer's own policy.
        #[arg(long)]
        boundary: bool,
    },

    /// Release the environment lock a crashed or killed run left behind.
    ///
    /// `up`, `destroy`, `release`, `rollback`, `failover` and `rotate-db-password` hold a lock
    /// (an SSM parameter, in the primary region but for `failover`) while they change anything;
    /// a second run fails fast naming the holder. Use this only when that holder is no longer
    /// running.
    #[command(after_help = "Example:\n  deployer unlock --env prod")]
    Unlock {
        #[command(flatten)]
        env: EnvArg,
        /// The region whose lock to release: by default the primary's, where every command but
        /// `failover` takes it (a failover takes it in the region it promotes, and says so).
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// Release without asking. Required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

impl Command {
    /// The subcommand as typed (`up`, `iam-policy`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Plan { .. } => "plan",
            Command::Up { .. } => "up",
            Command::Release { .. } => "release",
            Command::Rollback { .. } => "rollback",
            Command::Failover { .. } => "failover",
            Command::Drift { .. } => "drift",
            Command::Status { .. } => "status",
            Command::Destroy { .. } => "destroy",
            Command::IamPolicy { .. } => "iam-policy",
            Command::Unlock { .. } => "unlock",
            Command::RotateDbPassword { .. } => "rotate-db-password",
        }
    }

    pub fn env(&self) -> &str {
        match self {
            Command::Plan { env, .. }
            | Command::Up { env, .. }
            | Command::Release { env, .. }
            | Command::Rollback { env, .. }
            | Command::Failover { env, .. }
            | Command::Drift { env }
            | Command::Status { env, .. }
            | Command::Destroy { env, .. }
            | Command::IamPolicy { env, .. }
            | Command::Unlock { env, .. }
            | Command::RotateDbPassword { env, .. } => &env.env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_dir_is_accepted_before_or_after_the_subcommand() {
        let a = Cli::parse_from(["deployer", "--config-dir", "x", "plan", "--env", "dev"]);
        let b = Cli::parse_from(["deployer", "plan", "--env", "dev", "--config-dir", "x"]);
        assert_eq!(a.global.config_dir, PathBuf::from("x"));
        assert_eq!(b.global.config_dir, PathBuf::from("x"));
    }
}
