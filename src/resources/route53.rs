//! Route 53, shared by the kinds that write into a hosted zone (the failover records, their
//! health checks' zone tag, a certificate's validation records). The deployer never creates a
//! zone: it finds the public one by name.

use crate::cloud::{AwsResultExt, Clients, Error};

/// Route 53 is global: one client, whatever the region.
pub fn client(clients: &Clients) -> aws_sdk_route53::Client {
    clients.global()
}

/// `name` fully qualified (`example.com.`), as Route 53 answers names.
pub fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// The ID of the public hosted zone named exactly `name`; `None` when there is none.
pub async fn public_zone(r53: &aws_sdk_route53::Client, name: &str) -> Result<Option<String>, Error> {
    let wanted = fqdn(name);
    let out = r53
        .list_hosted_zones_by_name()
        .dns_name(&wanted)
        .max_items(1)
        .send()
        .await
        .op("ListHostedZonesByName")?;
    Ok(out
        .hosted_zones()
        .iter()
        .find(|z| z.name() == wanted && !z.config().is_some_and(|c| c.private_zone()))
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string()))
}

/// The ID of the public hosted zone `dns.hosted_zone` names, where the failover records go.
pub async fn failover_zone_id(r53: &aws_sdk_route53::Client, name: &str) -> Result<String, Error> {
    public_zone(r53, name).await?.ok_or_else(|| {
        Error::InvalidState(format!(
            "no public Route 53 hosted zone named {name} (dns.hosted_zone): the deployer writes the failover records there and never creates zones"
        ))
    })
}
