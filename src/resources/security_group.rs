//! Security group: a VPC's stateful firewall around a set of network interfaces. The environment
//! has two per region: the application's (its tasks' interfaces; no ingress yet) and the
//! database's, which admits PostgreSQL's port from the application's group and nothing else.
//!
//! The ingress rules are part of the spec, one rule per (protocol, ports, source), so a rule
//! revoked out of band is drift and `up` authorizes it again; rules are compared as a set (the
//! order AWS lists them in means nothing). Egress is left as AWS creates it (allow all) and is
//! not compared. A rule whose source is another group is a reference that holds that group: AWS
//! refuses to delete a group another group's rule points at, so the rule goes first.
//!
//! Discovery: one paginated `DescribeSecurityGroups` per region, filtered by the environment's
//! tags; the rules come with each group.

use std::collections::BTreeSet;
use std::fmt;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, SecurityGroup as SdkGroup,
    UserIdGroupPair,
};
use serde::Serialize;

use super::{
    ec2, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec, Tags,
    Update, TAG_ADDRESS,
};
use crate::cloud::{ec2_code, retry_on_codes, AwsResultExt, Error};
use crate::describe_all;
use crate::spec::{Address, Ref};

const NOT_FOUND: &str = "InvalidGroup.NotFound";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecurityGroupSpec {
    pub vpc: Ref,
    /// `GroupName`: unique in its VPC, fixed once created.
    pub name: String,
    /// `GroupDescription`: fixed once created.
    pub description: String,
    /// Sorted and without duplicates once normalised.
    pub ingress: Vec<IngressRule>,
}

/// One ingress permission: a protocol, a port range and one source.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp`, or `-1` for every protocol.
    pub protocol: String,
    /// `None` for every port (protocol `-1`).
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub source: RuleSource,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleSource {
    /// Another security group (the interfaces in it).
    Group(Ref),
    Cidr(String),
    Ipv6Cidr(String),
    PrefixList(String),
}

impl IngressRule {
    /// `protocol` on `port` from the security group at `source`.
    pub fn tcp_from_group(port: u16, source: Address) -> IngressRule {
        IngressRule {
            protocol: "tcp".into(),
            from_port: Some(i32::from(port)),
            to_port: Some(i32::from(port)),
            source: RuleSource::Group(Ref::Addr(source)),
        }
    }

    /// AWS's spelling: protocol numbers for the named ones become names, and "all protocols"
    /// has no ports.
    fn normalized(mut self) -> IngressRule {
        self.protocol = match self.protocol.to_ascii_lowercase().as_str() {
            "6" => "tcp".into(),
            "17" => "udp".into(),
            "1" => "icmp".into(),
            "all" => "-1".into(),
            p => p.to_string(),
        };
        if self.protocol == "-1" {
            self.from_port = None;
            self.to_port = None;
        }
        self
    }
}

impl fmt::Display for IngressRule {
    /// `tcp 5432 from us-east-1/service/security-group/app`, `-1 all from 10.0.0.0/8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports = match (self.from_port, self.to_port) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) => format!("{a}-{b}"),
            _ => "all".to_string(),
        };
        let source = match &self.source {
            RuleSource::Group(r) => r.to_string(),
            RuleSource::Cidr(c) | RuleSource::Ipv6Cidr(c) => c.clone(),
            RuleSource::PrefixList(p) => format!("prefix list {p}"),
        };
        write!(f, "{} {ports} from {source}", self.protocol)
    }
}

impl Serialize for IngressRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

pub struct SecurityGroup;

impl Kind for SecurityGroup {
    type Spec = SecurityGroupSpec;
    const NAME: &'static str = "security-group";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["security-groups"];
    const ACTIONS: &'static [&'static str] = &[
        "ec2:DescribeSecurityGroups",
        "ec2:CreateSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:DeleteSecurityGroup",
        "ec2:CreateTags",
    ];

    fn refs(spec: &mut SecurityGroupSpec) -> Vec<(Role, &mut Ref)> {
        let mut refs = vec![(Role::Parent, &mut spec.vpc)];
        for rule in &mut spec.ingress {
            if let RuleSource::Group(r) = &mut rule.source {
                refs.push((Role::Holds, r));
            }
        }
        refs
    }
    fn normalize(spec: &mut SecurityGroupSpec) {
        let rules: BTreeSet<IngressRule> = spec.ingress.drain(..).map(IngressRule::normalized).collect();
        spec.ingress = rules.into_iter().collect();
    }
    fn diff(desired: &SecurityGroupSpec, observed: &SecurityGroupSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, vpc: Yes, name: Yes, description: Yes, ingress: No);
    }
    fn readiness(_: &SecurityGroupSpec, _: &str) -> Readiness {
        // Usable as soon as CreateSecurityGroup returns.
        Readiness::Ready
    }
    fn conflicts(a: &SecurityGroupSpec, b: &SecurityGroupSpec) -> bool {
        // Names are unique per VPC: a replacement with the same name waits for the old group.
        a.vpc == b.vpc && a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = &ctx.ec2();
        let filters = &ec2::env_filters(ctx.app, ctx.env);
        let groups = describe_all!(
            client.describe_security_groups().set_filters(Some(filters.to_vec())),
            "DescribeSecurityGroups"
        )?;
        Ok(groups.iter().filter_map(found_of).collect())
    }
    /// Creates the group tagged in the same request, then authorizes its ingress rules. EC2 takes
    /// no client token here: a create answered "duplicate" (its first response lost, or a crash
    /// right after it) adopts the group of that name in the VPC if it carries this address's tag.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, SecurityGroupSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client = ctx.ec2(region);
        let vpc = ctx.id(&spec.vpc)?;
        let created = client
            .create_security_group()
            .group_name(&spec.name)
            .description(&spec.description)
            .vpc_id(&vpc)
            .tag_specifications(ec2::tag_spec(ResourceType::SecurityGroup, tags))
            .send()
            .await
            .op_unless("CreateSecurityGroup", ec2_code("InvalidGroup.Duplicate"))?;
        let (id, existing) = match created {
            Some(out) => (
                out.group_id()
                    .ok_or_else(|| Error::InvalidState("CreateSecurityGroup returned no ID".into()))?
                    .to_string(),
                vec![],
            ),
            None => adopt(&client, address, &vpc, &spec.name).await?,
        };
        let observed = SecurityGroupSpec { ingress: existing, ..spec.clone() };
        update(ctx, region, &id, spec, &observed).await?;
        Ok(id)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, SecurityGroupSpec>) -> Result<(), Error> {
        let Update { address, id, desired, observed, .. } = change;
        update(ctx, address.region(), id, desired, observed).await
    }
    /// Retries `DependencyViolation` within the kind's wait bound: the interfaces of a deleted
    /// database or task linger a while, and AWS refuses to delete a group while anything uses it.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, SecurityGroupSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let region = address.region();
        let client = ctx.ec2(region);
        retry_on_codes(
            &format!("{id} to be deletable"),
            &["DependencyViolation"],
            ctx.timeout_for(SecurityGroup::NAME),
            || async {
                client
                    .delete_security_group()
                    .group_id(id)
                    .send()
                    .await
                    .op_or_gone("DeleteSecurityGroup", ec2_code(NOT_FOUND))
                    .map(|_| ())
            },
        )
        .await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        ec2::create_tags(&ctx.ec2(address.region()), id, missing).await
    }
}

/// One rule per (protocol, ports, source) of each permission AWS lists.
fn rules_of(permissions: &[IpPermission]) -> Vec<IngressRule> {
    let mut rules = Vec::new();
    for p in permissions {
        let rule = |source| IngressRule {
            protocol: p.ip_protocol().unwrap_or("-1").to_string(),
            from_port: p.from_port(),
            to_port: p.to_port(),
            source,
        };
        rules.extend(
            p.user_id_group_pairs()
                .iter()
                .filter_map(|g| g.group_id())
                .map(|g| rule(RuleSource::Group(Ref::Id(g.to_string())))),
        );
        rules.extend(
            p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).map(|c| rule(RuleSource::Cidr(c.to_string()))),
        );
        rules.extend(
            p.ipv6_ranges()
                .iter()
                .filter_map(|r| r.cidr_ipv6())
                .map(|c| rule(RuleSource::Ipv6Cidr(c.to_string()))),
        );
        rules.extend(
            p.prefix_list_ids()
                .iter()
                .filter_map(|r| r.prefix_list_id())
                .map(|c| rule(RuleSource::PrefixList(c.to_string()))),
        );
    }
    rules
}

fn found_of(g: &SdkGroup) -> Option<Found> {
    let id = g.group_id()?;
    let tags = ec2::tags_of(g.tags());
    Some(Found {
        address: ec2::address_of(&tags, id)?,
        id: id.to_string(),
        spec: Spec::SecurityGroup(SecurityGroupSpec {
            vpc: Ref::Id(g.vpc_id()?.to_string()),
            name: g.group_name().unwrap_or_default().to_string(),
            description: g.description().unwrap_or_default().to_string(),
            ingress: rules_of(g.ip_permissions()),
        }),
        tags,
        state: format!("{} ingress rules", g.ip_permissions().len()),
        attrs: Default::default(),
    })
}

/// The group named `name` in `vpc`, if it is the one at `address`: its ID and current rules.
async fn adopt(
    client: &aws_sdk_ec2::Client,
    address: &Address,
    vpc: &str,
    name: &str,
) -> Result<(String, Vec<IngressRule>), Error> {
    let out = client
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(name).build())
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .send()
        .await
        .op("DescribeSecurityGroups")?;
    let group = out.security_groups().first().ok_or_else(|| {
        Error::InvalidState(format!("security group {name} was reported to exist in {vpc} but is not there"))
    })?;
    let tags = ec2::tags_of(group.tags());
    if tags.get(TAG_ADDRESS).map(String::as_str) != Some(address.as_str()) {
        return Err(Error::InvalidState(format!(
            "a security group named {name} already exists in {vpc} and is not this environment's {address}"
        )));
    }
    Ok((group.group_id().unwrap_or_default().to_string(), rules_of(group.ip_permissions())))
}

/// The permission that grants exactly `rule`, with references resolved to group IDs.
fn permission(ctx: &Ctx<'_>, rule: &IngressRule) -> Result<IpPermission, Error> {
    let mut p = IpPermission::builder()
        .ip_protocol(&rule.protocol)
        .set_from_port(rule.from_port)
        .set_to_port(rule.to_port);
    p = match &rule.source {
        RuleSource::Group(r) => {
            p.user_id_group_pairs(UserIdGroupPair::builder().group_id(ctx.id(r)?).build())
        }
        RuleSource::Cidr(c) => p.ip_ranges(IpRange::builder().cidr_ip(c).build()),
        RuleSource::Ipv6Cidr(c) => p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build()),
        RuleSource::PrefixList(id) => p.prefix_list_ids(PrefixListId::builder().prefix_list_id(id).build()),
    };
    Ok(p.build())
}

/// The rules to authorize (desired, not there) and to revoke (there, not desired).
pub fn rule_changes(
    desired: &SecurityGroupSpec,
    observed: &SecurityGroupSpec,
) -> (Vec<IngressRule>, Vec<IngressRule>) {
    let want: BTreeSet<IngressRule> = desired.ingress.iter().cloned().map(IngressRule::normalized).collect();
    let have: BTreeSet<IngressRule> = observed.ingress.iter().cloned().map(IngressRule::normalized).collect();
    (want.difference(&have).cloned().collect(), have.difference(&want).cloned().collect())
}

/// Authorizes the missing rules first, then revokes the extra ones, so a rule moving to a new
/// source never leaves a moment with neither.
pub async fn update(
    ctx: &Ctx<'_>,
    region: &str,
    id: &str,
    desired: &SecurityGroupSpec,
    observed: &SecurityGroupSpec,
) -> Result<(), Error> {
    let client = ctx.ec2(region);
    let (missing, extra) = rule_changes(desired, observed);
    if !missing.is_empty() {
        let permissions = missing.iter().map(|r| permission(ctx, r)).collect::<Result<Vec<_>, _>>()?;
        client
            .authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(permissions))
            .send()
            .await
            // An authorize whose answer was lost is retried by the SDK and refused as a
            // duplicate: the rules are in place, as wanted (EC2 applies the list all or nothing).
            .op_unless("AuthorizeSecurityGroupIngress", ec2_code("InvalidPermission.Duplicate"))?;
    }
    if !extra.is_empty() {
        let permissions = extra.iter().map(|r| permission(ctx, r)).collect::<Result<Vec<_>, _>>()?;
        client
            .revoke_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(permissions))
            .send()
            .await
            // Likewise a revoke retried after its answer was lost: the rules are already gone.
            .op_unless("RevokeSecurityGroupIngress", ec2_code("InvalidPermission.NotFound"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> Address {
        Address::new("us-east-1", "service", "security-group", "app")
    }

    fn db(rules: Vec<IngressRule>) -> SecurityGroupSpec {
        SecurityGroupSpec {
            vpc: Ref::Addr(Address::new("us-east-1", "network", "vpc", "main")),
            name: "webapp-test-db".into(),
            description: "database".into(),
            ingress: rules,
        }
    }

    fn cidr(protocol: &str, port: i32, c: &str) -> IngressRule {
        IngressRule {
            protocol: protocol.into(),
            from_port: Some(port),
            to_port: Some(port),
            source: RuleSource::Cidr(c.into()),
        }
    }

    fn planned(desired: &SecurityGroupSpec, observed: &SecurityGroupSpec) -> Diff {
        let (mut a, mut b) = (Spec::SecurityGroup(desired.clone()), Spec::SecurityGroup(observed.clone()));
        a.normalize();
        b.normalize();
        a.diff(&b)
    }

    #[test]
    fn rule_order_and_protocol_spelling_are_not_drift() {
        let desired = db(vec![IngressRule::tcp_from_group(5432, app()), cidr("tcp", 443, "10.0.0.0/8")]);
        let mut observed = db(vec![cidr("6", 443, "10.0.0.0/8"), IngressRule::tcp_from_group(5432, app())]);
        assert!(planned(&desired, &observed).is_empty());
        observed.ingress.push(IngressRule::tcp_from_group(5432, app()));
        assert!(planned(&desired, &observed).is_empty(), "a rule listed twice is one rule");
    }

    #[test]
    fn a_lost_rule_is_drift_in_place_and_an_extra_one_is_revoked() {
        let desired = db(vec![IngressRule::tcp_from_group(5432, app())]);
        let observed = db(vec![]);
        let d = planned(&desired, &observed);
        assert!(d.has("ingress") && !d.replace(), "{d:?}");
        assert_eq!(d.fields[0].to, r#"["tcp 5432 from us-east-1/service/security-group/app"]"#);

        let observed = db(vec![cidr("tcp", 5432, "0.0.0.0/0"), IngressRule::tcp_from_group(5432, app())]);
        let (missing, extra) = rule_changes(&desired, &observed);
        assert!(missing.is_empty());
        assert_eq!(extra, vec![cidr("tcp", 5432, "0.0.0.0/0")]);
    }

    #[test]
    fn all_protocols_have_no_ports_and_a_new_name_replaces() {
        let all = IngressRule {
            protocol: "all".into(),
            from_port: Some(-1),
            to_port: Some(-1),
            source: RuleSource::Cidr("10.0.0.0/8".into()),
        };
        assert_eq!(all.clone().normalized().from_port, None);
        assert_eq!(all.normalized().to_string(), "-1 all from 10.0.0.0/8");
        let mut renamed = db(vec![]);
        renamed.name = "other".into();
        assert!(planned(&renamed, &db(vec![])).replace());
    }

    #[test]
    fn a_rule_from_another_group_holds_that_group() {
        let spec = Spec::SecurityGroup(db(vec![IngressRule::tcp_from_group(5432, app())]));
        assert!(spec.holds(&app()));
        assert_eq!(spec.parent_deps(), vec![Address::new("us-east-1", "network", "vpc", "main")]);
    }
}
