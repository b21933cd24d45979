//! What the deployer's image promises and can be checked without building it (Docker cannot
//! build images on these machines; `scripts/test` lints the Dockerfile with hadolint): the
//! Dockerfile runs the binary as an unprivileged user with the deployer as its entrypoint, and
//! the binary does its work as a non-root user against a configuration directory it cannot
//! write (the image mounts it read-only).

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use support::{deployer_command, run, show_output, Emulator, Project};

#[test]
fn the_dockerfile_runs_the_deployer_as_an_unprivileged_user_from_a_minimal_image() {
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "multi-stage: build, then run: {stages:?}");
    assert!(stages[1].contains("distroless"), "no shell or package manager at run time: {}", stages[1]);
    let last = |prefix: &str| dockerfile.lines().rfind(|l| l.starts_with(prefix)).unwrap_or_default();
    assert_eq!(last("USER "), "USER 65532:65532", "not root");
    assert_eq!(
        last("ENTRYPOINT "),
        r#"ENTRYPOINT ["/usr/local/bin/deployer"]"#,
        "exec form: no shell needed"
    );
}

/// Makes `dir` and everything in it read-only (and readable by anyone).
fn read_only(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
}

#[test]
fn the_binary_works_as_a_non_root_user_with_a_read_only_config_directory() {
    let emu = Emulator::start();
    let project = Project::new();
    project.disable("database");
    project.disable("service");
    // What the harness writes for the SDK (empty shared config files) must exist before the
    // directory turns read-only; a throwaway command creates it.
    let mut version = deployer_command(&emu, &project);
    version.arg("--version");
    let _ = run(version);
    let dir = project.dir().to_path_buf();
    for sub in std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.path().is_dir()) {
        read_only(&sub.path());
    }
    read_only(&dir);
    let as_user = |args: &[&str]| {
        let mut cmd = deployer_command(&emu, &project);
        cmd.args(args);
        // As root (CI containers), drop to distroless's `nonroot` user (65532) for the run;
        // as anyone else, the run already is not root.
        // /proc/self belongs to this process's effective user.
        if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
            let program = cmd.get_program().to_owned();
            let mut wrapped = std::process::Command::new("setpriv");
            wrapped
                .args(["--reuid=65532", "--regid=65532", "--clear-groups", "--"])
                .arg(program)
                .args(cmd.get_args());
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => wrapped.env(k, v),
                    None => wrapped.env_remove(k),
                };
            }
            wrapped.env("HOME", "/nonexistent").stdin(std::process::Stdio::null());
            cmd = wrapped;
        }
        run(cmd)
    };
    let whoami = as_user(&["--version"]);
    assert!(whoami.status.success(), "{}", show_output(&whoami));
    let up = as_user(&["up", "--env", "local", "--yes"]);
    assert!(up.status.success(), "up as a non-root user: {}", show_output(&up));
    let drift = as_user(&["drift", "--env", "local", "--output", "json"]);
    assert_eq!(drift.status.code(), Some(0), "{}", show_output(&drift));
    // Restore write access so the temporary directory can be removed.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}
