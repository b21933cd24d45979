//! The AWS commercial regions the deployer knows, with their availability zones.
//!
//! The zone lists are the zone *names* an account usually sees; an account can map or restrict them
//! differently, which is what `[network.availability_zones]` is for.

/// Region name → its availability zone names, in order.
pub const KNOWN_REGIONS: &[(&str, &[&str])] = &[
    ("us-east-1", &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"]),
    ("us-east-2", &["us-east-2a", "us-east-2b", "us-east-2c"]),
    ("us-west-1", &["us-west-1a", "us-west-1c"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]),
    ("ca-central-1", &["ca-central-1a", "ca-central-1b", "ca-central-1d"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-west-2", &["eu-west-2a", "eu-west-2b", "eu-west-2c"]),
    ("eu-west-3", &["eu-west-3a", "eu-west-3b", "eu-west-3c"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b", "eu-central-1c"]),
    ("eu-north-1", &["eu-north-1a", "eu-north-1b", "eu-north-1c"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b", "ap-southeast-2c"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"]),
    ("ap-northeast-2", &["ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c", "ap-northeast-2d"]),
    ("ap-south-1", &["ap-south-1a", "ap-south-1b", "ap-south-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
];

/// The availability zones of a known region, `None` for a region the deployer does not know.
pub fn availability_zones(region: &str) -> Option<&'static [&'static str]> {
    KNOWN_REGIONS.iter().find(|(name, _)| *name == region).map(|(_, zones)| *zones)
}

/// Is `zone` a zone name of `region`: the region name followed by exactly one lowercase letter.
pub fn zone_belongs_to(zone: &str, region: &str) -> bool {
    match zone.strip_prefix(region) {
        Some(rest) => rest.len() == 1 && rest.bytes().all(|b| b.is_ascii_lowercase()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_zone_belongs_to_its_region() {
        for (region, zones) in KNOWN_REGIONS {
            assert!(zones.len() >= 2, "{region}");
            for zone in *zones {
                assert!(zone_belongs_to(zone, region), "{zone} of {region}");
            }
        }
    }

    #[test]
    fn zone_membership() {
        assert!(zone_belongs_to("us-east-1a", "us-east-1"));
        assert!(!zone_belongs_to("us-east-1", "us-east-1"));
        assert!(!zone_belongs_to("us-east-1ab", "us-east-1"));
        assert!(!zone_belongs_to("us-east-1A", "us-east-1"));
        assert!(!zone_belongs_to("us-east-2a", "us-east-1"));
    }
}
