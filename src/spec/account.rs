//! The AWS account and partition the environment lives in. The service tier writes ARNs into
//! IAM policies (`arn:aws:ecr:us-east-1:123456789012:repository/webapp-prod`) and trust
//! conditions (`aws:SourceAccount`), so the model needs them; they are read once per run
//! (STS `GetCallerIdentity`, [`crate::cloud::Clients::account`]) and are otherwise plain data.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The 12-digit account ID.
    pub id: String,
    /// `aws`, `aws-us-gov` or `aws-cn`: the first part of every ARN.
    pub partition: String,
}

impl Account {
    /// `arn:<partition>:<service>:<region>:<account>:<resource>`; `region` is empty for global
    /// services (IAM).
    pub fn arn(&self, service: &str, region: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{region}:{}:{resource}", self.partition, self.id)
    }

    /// The partition a region belongs to (`cn-north-1` → `aws-cn`, `us-gov-west-1` →
    /// `aws-us-gov`, any other → `aws`).
    pub fn partition_of_region(region: &str) -> &'static str {
        if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    /// The partition of an ARN (`arn:aws:sts::123456789012:assumed-role/…` → `aws`).
    pub fn partition_of(arn: &str) -> Option<&str> {
        arn.strip_prefix("arn:")?.split(':').next().filter(|p| !p.is_empty())
    }

    /// For the pure core's tests.
    #[cfg(test)]
    pub fn test() -> Account {
        Account { id: "123456789012".into(), partition: "aws".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_partitions() {
        let a = Account::test();
        assert_eq!(a.arn("iam", "", "role/x"), "arn:aws:iam::123456789012:role/x");
        assert_eq!(Account::partition_of("arn:aws-us-gov:sts::1:assumed-role/r/s"), Some("aws-us-gov"));
        assert_eq!(Account::partition_of("nope"), None);
    }
}
