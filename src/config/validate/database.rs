//! `[database]`: the RDS PostgreSQL primary and its cross-region read replicas, and the rules
//! RDS applies to their settings, checked here so a bad value fails before any AWS call.

use std::time::Duration;

use super::super::diagnostic::{list, ConfigIssue};
use super::super::load::Merged;
use super::super::schema;
use super::super::DatabaseConfig;
use super::kms::KmsKeys;
use super::{Check, Regions};

/// Instance families RDS offers PostgreSQL on that the deployer accepts.
const BURSTABLE_FAMILIES: &[&str] = &["t3", "t4g"];
const STANDARD_FAMILIES: &[&str] = &["m5", "m6g", "m6i", "m7g", "r5", "r6g", "r6i", "r7g"];
/// Sizes, smallest first.
const SIZES: &[&str] = &[
    "micro", "small", "medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge",
    "24xlarge",
];
/// Burstable classes go up to 2xlarge; the m and r families start at large.
const LARGEST_BURSTABLE: &str = "2xlarge";
const SMALLEST_STANDARD: &str = "large";

const INSTANCE_CLASS_RULE: &str = "an instance class is `db.<family>.<size>`: the burstable families \
    t3 and t4g come in micro, small, medium, large, xlarge and 2xlarge; the families m5, m6g, m6i, \
    m7g, r5, r6g, r6i and r7g in large, xlarge, 2xlarge, 4xlarge, 8xlarge, 12xlarge, 16xlarge and \
    24xlarge";

const DAY: u32 = 24 * 60;
const WEEK: u32 = 7 * DAY;
const DAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MIN_WINDOW_MINUTES: u32 = 30;

impl Check<'_> {
    pub(super) fn database(
        &mut self,
        merged: &Merged,
        app: Option<&str>,
        regions: &Regions,
    ) -> Option<DatabaseConfig> {
        let identifier = self.checked_str(
            merged,
            "database.identifier",
            "config::invalid_name",
            "DB identifier",
            rds_identifier_problem,
            "RDS identifiers are 1 to 63 lowercase letters, digits and '-', start with a letter, and \
             have no '--' and no trailing '-'; the default is \"{app}-{env}\"",
        );
        let engine_version = self.checked_str(
            merged,
            "database.engine_version",
            "config::invalid_value",
            "engine version",
            engine_version_problem,
            "a PostgreSQL version as RDS names it, `<major>.<minor>` with major 13 to 17, e.g. \"16.4\"",
        );
        let instance_class = self.checked_str(
            merged,
            "database.instance_class",
            "config::instance_class",
            "instance class",
            instance_class_problem,
            INSTANCE_CLASS_RULE,
        );
        let replica_instance_class = self.checked_str(
            merged,
            "database.replica_instance_class",
            "config::instance_class",
            "instance class",
            instance_class_problem,
            INSTANCE_CLASS_RULE,
        );
        let allocated = self.in_range(
            merged,
            "database.allocated_storage_gib",
            "storage allocated at creation in GiB; RDS PostgreSQL on general purpose storage takes 20 to 65536",
        );
        let max_allocated = self.in_range(
            merged,
            "database.max_allocated_storage_gib",
            "the storage autoscaling limit in GiB",
        );
        if let (Some(allocated), Some(max)) = (allocated, max_allocated) {
            if allocated > max {
                self.storage_min_above_max(merged, allocated, max);
            }
        }
        let kms_key = self.kms_keys(
            merged,
            "database.kms_key",
            regions,
            KmsKeys::AllOrNone {
                why: "the read replica in each secondary region is encrypted with a key of its own \
                      region, so [database.kms_key] names one for every region (or is left out for \
                      the AWS-managed key alias/aws/rds everywhere)"
                    .to_owned(),
            },
        );
        let backup_retention_days = self.in_range(
            merged,
            "database.backup_retention_days",
            "days of automated backups; at least 1, because RDS refuses to create a read replica \
             of a database without automated backups (and the secondary regions' replicas are one)",
        );
        let backup_window = self.checked_str(
            merged,
            "database.backup_window",
            "config::invalid_value",
            "backup window",
            |window| backup_window(window).err(),
            "the daily backup window is `hh24:mi-hh24:mi` in UTC, at least 30 minutes long, e.g. \
             \"03:00-04:00\"",
        );
        let maintenance_window = self.checked_str(
            merged,
            "database.maintenance_window",
            "config::invalid_value",
            "maintenance window",
            |window| maintenance_window(window).err(),
            "the weekly maintenance window is `ddd:hh24:mi-ddd:hh24:mi` in UTC with days mon, tue, \
             wed, thu, fri, sat and sun, at least 30 minutes long, e.g. \"sun:05:00-sun:06:00\"",
        );
        let backup_window = backup_window
            .map(|window| window.unwrap_or_else(|| schema::str_default("database.backup_window").to_owned()));
        let maintenance_window = maintenance_window.map(|window| {
            window.unwrap_or_else(|| schema::str_default("database.maintenance_window").to_owned())
        });
        if let (Ok(backup), Ok(maintenance)) = (&backup_window, &maintenance_window) {
            if windows_overlap(backup, maintenance) {
                self.windows_overlap(merged, backup, maintenance);
            }
        }
        let port = self.in_range(
            merged,
            "database.port",
            "the port PostgreSQL listens on; RDS accepts 1150 to 65535",
        );
        let database_name = self.checked_str(
            merged,
            "database.database_name",
            "config::invalid_name",
            "database name",
            database_name_problem,
            "the database created in the instance: 1 to 63 letters, digits and '_', starting with a \
             letter, e.g. \"app\"",
        );
        let master_username = self.checked_str(
            merged,
            "database.master_username",
            "config::invalid_name",
            "master username",
            master_username_problem,
            "1 to 63 letters, digits and '_', starting with a letter, and not a name RDS or \
             PostgreSQL reserves (postgres, admin, rdsadmin, rds_*, pg_*, public…), e.g. \"app_admin\"",
        );
        let wait_timeout = self.in_range(
            merged,
            "database.wait_timeout_secs",
            "how long to wait, in seconds, for a database or replica to become available (creating a \
             cross-region replica can take an hour)",
        );

        let instance_class = match instance_class.ok()? {
            Some(class) => class,
            None => schema::str_default("database.instance_class").to_owned(),
        };
        Some(DatabaseConfig {
            enabled: self.flag(merged, "database.enabled"),
            identifier: match identifier.ok()? {
                Some(identifier) => identifier,
                None => format!("{}-{}", app?, self.env),
            },
            engine_version: engine_version
                .ok()?
                .unwrap_or_else(|| schema::str_default("database.engine_version").to_owned()),
            replica_instance_class: replica_instance_class.ok()?.unwrap_or_else(|| instance_class.clone()),
            instance_class,
            allocated_storage_gib: allocated? as u32,
            max_allocated_storage_gib: max_allocated? as u32,
            multi_az: self.flag(merged, "database.multi_az"),
            kms_key: kms_key?,
            backup_retention_days: backup_retention_days? as u32,
            backup_window: backup_window.ok()?,
            maintenance_window: maintenance_window.ok()?,
            deletion_protection: self.flag(merged, "database.deletion_protection"),
            skip_final_snapshot: self.flag(merged, "database.skip_final_snapshot"),
            apply_immediately: self.flag(merged, "database.apply_immediately"),
            performance_insights: self.flag(merged, "database.performance_insights"),
            port: port? as u16,
            database_name: database_name
                .ok()?
                .unwrap_or_else(|| schema::str_default("database.database_name").to_owned()),
            master_username: master_username
                .ok()?
                .unwrap_or_else(|| schema::str_default("database.master_username").to_owned()),
            allow_replacement: self.flag(merged, "database.allow_replacement"),
            wait_timeout: Duration::from_secs(wait_timeout? as u64),
        })
    }

    /// `allocated_storage_gib` above `max_allocated_storage_gib`: named on the key set last.
    fn storage_min_above_max(&mut self, merged: &Merged, allocated: i64, max: i64) {
        const MIN: &str = "database.allocated_storage_gib";
        const MAX: &str = "database.max_allocated_storage_gib";
        let (min_value, max_value) = (merged.int(MIN), merged.int(MAX));
        let mut message = format!("{MIN} ({allocated}) is greater than {MAX} ({max}): min > max");
        let key = if max_value.is_some() { MAX } else { MIN };
        if let (Some(min_value), Some(max_value)) = (&min_value, &max_value) {
            if min_value.loc.file != max_value.loc.file {
                let other = if key == MAX { min_value } else { max_value };
                message.push_str(&format!(
                    " ({} is set in {})",
                    if key == MAX { MIN } else { MAX },
                    self.file_name(&other.loc)
                ));
            }
        }
        let issue = ConfigIssue::new("config::min_above_max", key, message).help(format!(
            "storage autoscaling grows the database from allocated_storage_gib up to \
             max_allocated_storage_gib: raise max_allocated_storage_gib to at least {allocated} \
             (equal turns autoscaling off), or lower allocated_storage_gib"
        ));
        let (primary, secondary) = if key == MAX { (max_value, min_value) } else { (min_value, max_value) };
        let mut issue = self.at(issue, primary.as_ref().expect("the key named is set"), "min > max");
        if let Some(secondary) = &secondary {
            issue = self.at(issue, secondary, if key == MAX { "the minimum" } else { "the maximum" });
        }
        self.issue(issue);
    }

    fn windows_overlap(&mut self, merged: &Merged, backup: &str, maintenance: &str) {
        const BACKUP: &str = "database.backup_window";
        const MAINTENANCE: &str = "database.maintenance_window";
        let (backup_value, maintenance_value) = (merged.string(BACKUP), merged.string(MAINTENANCE));
        let key = if maintenance_value.is_some() { MAINTENANCE } else { BACKUP };
        let issue = ConfigIssue::new(
            "config::window_overlap",
            key,
            format!("the maintenance window `{maintenance}` overlaps the daily backup window `{backup}`"),
        )
        .help(
            "RDS does not accept a maintenance window that overlaps the backup window (both are \
             UTC; the backup window recurs every day): move one of them",
        );
        let (primary, secondary) = if key == MAINTENANCE {
            (maintenance_value, backup_value)
        } else {
            (backup_value, maintenance_value)
        };
        let mut issue = self.at(issue, primary.as_ref().expect("one of them is set"), "overlaps");
        if let Some(secondary) = &secondary {
            issue = self.at(
                issue,
                secondary,
                if key == MAINTENANCE { "backup window" } else { "maintenance window" },
            );
        }
        self.issue(issue);
    }
}

/// Whether RDS offers Performance Insights on instance `class`: not on the micro and small sizes.
pub fn performance_insights_supported(class: &str) -> bool {
    !(class.ends_with(".micro") || class.ends_with(".small"))
}

/// What keeps `class` from being an instance class PostgreSQL runs on, if anything.
pub(crate) fn instance_class_problem(class: &str) -> Option<String> {
    let Some(rest) = class.strip_prefix("db.") else {
        return Some(if instance_class_problem(&format!("db.{class}")).is_none() {
            format!("does not start with `db.`: did you mean `db.{class}`?")
        } else {
            "is not `db.<family>.<size>`".to_owned()
        });
    };
    let Some((family, size)) = rest.split_once('.') else {
        return Some("is not `db.<family>.<size>`".to_owned());
    };
    let burstable = BURSTABLE_FAMILIES.contains(&family);
    if !burstable && !STANDARD_FAMILIES.contains(&family) {
        let families: Vec<&str> = BURSTABLE_FAMILIES.iter().chain(STANDARD_FAMILIES).copied().collect();
        return Some(format!("has the family `{family}`; PostgreSQL classes here are {}", list(&families)));
    }
    let Some(position) = SIZES.iter().position(|known| *known == size) else {
        return Some(format!("has the size `{size}`, which is not one of {}", list(SIZES)));
    };
    let size_at = |name: &str| SIZES.iter().position(|known| *known == name).expect("a known size");
    if burstable && position > size_at(LARGEST_BURSTABLE) {
        return Some(format!(
            "is too large for the burstable family `{family}`, which goes up to {LARGEST_BURSTABLE}"
        ));
    }
    if !burstable && position < size_at(SMALLEST_STANDARD) {
        return Some(format!("is too small for the family `{family}`, which starts at {SMALLEST_STANDARD}"));
    }
    None
}

/// What keeps `identifier` from being an RDS DB identifier, if anything.
pub(crate) fn rds_identifier_problem(identifier: &str) -> Option<String> {
    let Some(first) = identifier.chars().next() else {
        return Some("must not be empty".to_owned());
    };
    let length = identifier.chars().count();
    if length > 63 {
        return Some(format!("is {length} characters long; it must be at most 63"));
    }
    if identifier.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!(
            "has uppercase letters; RDS stores identifiers in lowercase, so write `{}`",
            identifier.to_ascii_lowercase()
        ));
    }
    if !first.is_ascii_lowercase() {
        return Some(format!("must start with a letter, not `{first}`"));
    }
    if let Some(bad) =
        identifier.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!("may contain only letters, digits and '-', not `{bad}`"));
    }
    if identifier.contains("--") {
        return Some("must not contain '--'".to_owned());
    }
    if identifier.ends_with('-') {
        return Some("must not end with '-'".to_owned());
    }
    None
}

/// What keeps `version` from being a PostgreSQL `<major>.<minor>` RDS could offer, if anything.
pub(crate) fn engine_version_problem(version: &str) -> Option<String> {
    let number = |part: &str| {
        (!part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0')))
        .then(|| part.parse::<u32>().ok())
        .flatten()
    };
    let parts: Vec<&str> = version.split('.').collect();
    let [major, minor] = parts[..] else {
        return Some("is not `<major>.<minor>`, e.g. `16.4`".to_owned());
    };
    let (Some(major), Some(_)) = (number(major), number(minor)) else {
        return Some("is not `<major>.<minor>`, e.g. `16.4`".to_owned());
    };
    if !(13..=17).contains(&major) {
        return Some(format!("has major version {major}; RDS PostgreSQL majors are 13 to 17"));
    }
    None
}

/// What keeps `name` from being a PostgreSQL identifier (unquoted), if anything.
fn pg_identifier_problem(name: &str) -> Option<String> {
    let Some(first) = name.chars().next() else {
        return Some("must not be empty".to_owned());
    };
    let length = name.chars().count();
    if length > 63 {
        return Some(format!("is {length} characters long; it must be at most 63"));
    }
    if !first.is_ascii_alphabetic() {
        return Some(format!("must start with a letter, not `{first}`"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        return Some(format!("may contain only letters, digits and '_', not `{bad}`"));
    }
    None
}

pub(crate) fn database_name_problem(name: &str) -> Option<String> {
    const EXISTING: &[&str] = &["postgres", "rdsadmin", "template0", "template1"];
    pg_identifier_problem(name).or_else(|| {
        EXISTING
            .iter()
            .any(|existing| existing.eq_ignore_ascii_case(name))
            .then(|| "exists already in every RDS PostgreSQL instance".to_owned())
    })
}

pub(crate) fn master_username_problem(name: &str) -> Option<String> {
    const RESERVED: &[&str] = &[
        "postgres",
        "admin",
        "rdsadmin",
        "rdsrepladmin",
        "rdstopmgr",
        "rds_superuser",
        "rds_replication",
        "rds_password",
        "public",
        "user",
        "current_user",
        "session_user",
        "none",
        "all",
    ];
    pg_identifier_problem(name).or_else(|| {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("pg_") {
            Some("starts with `pg_`, which PostgreSQL reserves for its own roles".to_owned())
        } else if RESERVED.contains(&lower.as_str()) {
            Some("is a name RDS or PostgreSQL reserves".to_owned())
        } else {
            None
        }
    })
}

/// Minutes since midnight of `hh24:mi`.
fn time_of_day(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    let two_digits = |part: &str| {
        (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit())).then(|| part.parse::<u32>().ok())?
    };
    let (hours, minutes) = (two_digits(hours)?, two_digits(minutes)?);
    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

/// A daily `hh24:mi-hh24:mi` window as (start minute of the day, length in minutes).
fn backup_window(window: &str) -> Result<(u32, u32), String> {
    let form = "is not of the form `hh24:mi-hh24:mi`";
    let (start, end) = window.split_once('-').ok_or(form)?;
    let (Some(start), Some(end)) = (time_of_day(start), time_of_day(end)) else {
        return Err(format!("{form} with times from 00:00 to 23:59"));
    };
    let length = (end + DAY - start) % DAY;
    if length < MIN_WINDOW_MINUTES {
        return Err(format!("lasts {length} minutes; it must last at least {MIN_WINDOW_MINUTES}"));
    }
    Ok((start, length))
}

/// A weekly `ddd:hh24:mi-ddd:hh24:mi` window as (start minute of the week, length in minutes).
fn maintenance_window(window: &str) -> Result<(u32, u32), String> {
    let form = "is not of the form `ddd:hh24:mi-ddd:hh24:mi`";
    let moment = |text: &str| -> Result<u32, String> {
        let (day, time) = text.split_once(':').filter(|(_, time)| time.contains(':')).ok_or(form)?;
        let Some(day_index) = DAYS.iter().position(|known| *known == day) else {
            return Err(format!("has the day `{day}`; days are {}", list(DAYS)));
        };
        let time = time_of_day(time).ok_or(format!("{form} with times from 00:00 to 23:59"))?;
        Ok(day_index as u32 * DAY + time)
    };
    let (start, end) = window.split_once('-').ok_or(form)?;
    let (start, end) = (moment(start)?, moment(end)?);
    let length = (end + WEEK - start) % WEEK;
    if length < MIN_WINDOW_MINUTES {
        return Err(format!("lasts {length} minutes; it must last at least {MIN_WINDOW_MINUTES}"));
    }
    Ok((start, length))
}

/// Whether the weekly maintenance window meets the daily backup window on any day of the week.
/// Both are valid windows.
fn windows_overlap(backup: &str, maintenance: &str) -> bool {
    let ((backup_start, backup_length), (start, length)) =
        (backup_window(backup).expect("valid"), maintenance_window(maintenance).expect("valid"));
    // Two arcs of the week's circle meet when either starts inside the other.
    let meet = |a: u32, a_length: u32, b: u32, b_length: u32| {
        (b + WEEK - a) % WEEK < a_length || (a + WEEK - b) % WEEK < b_length
    };
    (0..7).any(|day| meet((day * DAY + backup_start) % WEEK, backup_length, start, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_classes() {
        for good in ["db.t3.micro", "db.t4g.2xlarge", "db.m5.large", "db.r7g.24xlarge", "db.m6i.xlarge"] {
            assert_eq!(instance_class_problem(good), None, "{good}");
        }
        for (bad, why) in [
            ("db.x9.large", "family `x9`"),
            ("db.m5.micro", "too small for the family `m5`, which starts at large"),
            ("db.t3.4xlarge", "too large for the burstable family `t3`"),
            ("m5.large", "did you mean `db.m5.large`?"),
            ("db.m5.huge", "size `huge`"),
            ("db.m5", "is not `db.<family>.<size>`"),
            ("rds.m5.large", "is not `db.<family>.<size>`"),
            ("", "is not `db.<family>.<size>`"),
        ] {
            let problem = instance_class_problem(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(problem.contains(why), "{bad}: `{problem}` should say `{why}`");
        }
    }

    #[test]
    fn performance_insights_needs_more_than_small() {
        assert!(!performance_insights_supported("db.t4g.micro"));
        assert!(!performance_insights_supported("db.t3.small"));
        assert!(performance_insights_supported("db.t4g.medium"));
        assert!(performance_insights_supported("db.r6g.large"));
    }

    #[test]
    fn rds_identifiers() {
        for good in ["webapp-prod", "a", "db1", &"a".repeat(63)] {
            assert_eq!(rds_identifier_problem(good), None, "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            (&"a".repeat(64), "at most 63"),
            ("1db", "start with a letter"),
            ("-db", "start with a letter"),
            ("Webapp", "write `webapp`"),
            ("web_app", "not `_`"),
            ("web--app", "'--'"),
            ("webapp-", "end with '-'"),
        ] {
            let problem = rds_identifier_problem(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(problem.contains(why), "{bad}: `{problem}` should say `{why}`");
        }
    }

    #[test]
    fn engine_versions() {
        for good in ["13.0", "16.4", "17.2", "14.12"] {
            assert_eq!(engine_version_problem(good), None, "{good}");
        }
        for (bad, why) in [
            ("16", "<major>.<minor>"),
            ("16.4.1", "<major>.<minor>"),
            ("16.x", "<major>.<minor>"),
            ("16.04", "<major>.<minor>"),
            ("v16.4", "<major>.<minor>"),
            ("12.9", "major version 12"),
            ("18.0", "major version 18"),
        ] {
            let problem = engine_version_problem(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(problem.contains(why), "{bad}: `{problem}` should say `{why}`");
        }
    }

    #[test]
    fn postgres_names() {
        for good in ["app", "App_2", "a"] {
            assert_eq!(database_name_problem(good), None, "{good}");
            assert_eq!(master_username_problem(good), None, "{good}");
        }
        assert!(database_name_problem("template1").unwrap().contains("exists already"));
        assert!(database_name_problem("1app").unwrap().contains("start with a letter"));
        assert!(database_name_problem("my-app").unwrap().contains("not `-`"));
        assert!(database_name_problem(&"a".repeat(64)).unwrap().contains("at most 63"));
        for reserved in ["postgres", "Admin", "rdsadmin", "rds_superuser"] {
            assert!(master_username_problem(reserved).unwrap().contains("reserves"), "{reserved}");
        }
        assert!(master_username_problem("pg_app").unwrap().contains("`pg_`"));
    }

    #[test]
    fn windows() {
        assert_eq!(backup_window("03:00-04:00"), Ok((180, 60)));
        assert_eq!(backup_window("23:45-00:15"), Ok((23 * 60 + 45, 30)));
        assert!(backup_window("03:00-03:15").unwrap_err().contains("lasts 15 minutes"));
        assert!(backup_window("03:00-03:00").unwrap_err().contains("lasts 0 minutes"));
        assert!(backup_window("3:00-4:00").unwrap_err().contains("hh24:mi-hh24:mi"));
        assert!(backup_window("24:00-01:00").unwrap_err().contains("00:00 to 23:59"));
        assert!(backup_window("03:00").unwrap_err().contains("hh24:mi-hh24:mi"));

        assert_eq!(maintenance_window("sun:05:00-sun:06:00"), Ok((6 * DAY + 300, 60)));
        assert_eq!(maintenance_window("sun:23:30-mon:00:30"), Ok((6 * DAY + 23 * 60 + 30, 60)));
        assert!(maintenance_window("Sun:05:00-Sun:06:00").unwrap_err().contains("the day `Sun`"));
        assert!(maintenance_window("sun:05:00-sun:05:10").unwrap_err().contains("lasts 10 minutes"));
        assert!(maintenance_window("05:00-06:00").unwrap_err().contains("ddd:hh24:mi-ddd:hh24:mi"));

        assert!(!windows_overlap("03:00-04:00", "sun:05:00-sun:06:00"));
        assert!(!windows_overlap("03:00-04:00", "sun:04:00-sun:05:00"), "touching is not overlapping");
        assert!(windows_overlap("03:00-04:00", "sun:03:30-sun:04:30"));
        assert!(windows_overlap("03:00-04:00", "sat:22:00-sun:03:01"), "across midnight");
        assert!(windows_overlap("23:30-00:30", "wed:00:00-wed:00:30"), "a backup window across midnight");
        assert!(windows_overlap("03:00-04:00", "mon:00:00-tue:00:00"), "a long maintenance window");
    }
}
