//! The service tier's load balancing in one region: the security groups, the certificate (or
//! the configured one), the load balancer, the blue and green target groups and the three
//! listeners.

use super::{
    alb_security_group, app_security_group, base_name, certificate, listener, load_balancer, target_group,
    TIER,
};
use crate::config::Config;
use crate::model::{az_letter, Builder};
use crate::resources::acm_certificate::AcmCertificateSpec;
use crate::resources::listener::{ListenerAction, ListenerSpec};
use crate::resources::load_balancer::LoadBalancerSpec;
use crate::resources::security_group::{IngressRule, RuleSource, SecurityGroupSpec};
use crate::resources::target_group::TargetGroupSpec;
use crate::resources::Spec;
use crate::spec::{Address, Ref};

fn vpc(region: &str) -> Ref {
    Ref::Addr(Address::new(region, "network", "vpc", "main"))
}

fn cidr_rule(port: u16, cidr: &str) -> IngressRule {
    let source =
        if cidr.contains(':') { RuleSource::Ipv6Cidr(cidr.into()) } else { RuleSource::Cidr(cidr.into()) };
    IngressRule {
        protocol: "tcp".into(),
        from_port: Some(i32::from(port)),
        to_port: Some(i32::from(port)),
        source,
    }
}

/// The application's security group in every region, when the service or the database is on:
/// the container port from the load balancer's group only (with the service); nothing else.
pub(in crate::model) fn app_security_groups(b: &mut Builder, config: &Config) {
    if !(config.service.enabled || config.database.enabled) {
        return;
    }
    let (app, env) = (&config.app, &config.env);
    for region in config.region_names() {
        let ingress = if config.service.enabled {
            vec![IngressRule::tcp_from_group(config.service.container_port, alb_security_group(&region))]
        } else {
            vec![]
        };
        let address = app_security_group(&region);
        b.add(
            &region,
            address.tier(),
            address.name(),
            Spec::SecurityGroup(SecurityGroupSpec {
                vpc: vpc(&region),
                name: format!("{app}-{env}-app"),
                description: format!("{app} {env}: application tasks"),
                ingress,
            }),
        );
    }
}

/// The certificate a region's listeners use: the configured one, or the one the deployer requests.
pub fn certificate_ref(config: &Config, region: &str) -> Ref {
    match config.tls.certificate_arns.get(region) {
        Some(arn) => Ref::Id(arn.clone()),
        None => Ref::Addr(certificate(region)),
    }
}

/// The load balancer's group, built before the application's group, which names it.
pub(in crate::model) fn alb_security_group_resource(b: &mut Builder, config: &Config, region: &str) {
    let s = &config.service;
    let mut ingress = Vec::new();
    for cidr in &s.ingress_cidrs {
        ingress.push(cidr_rule(443, cidr));
        ingress.push(cidr_rule(80, cidr));
    }
    for cidr in &s.operator_cidrs {
        ingress.push(cidr_rule(s.test_listener_port, cidr));
    }
    let (app, env) = (&config.app, &config.env);
    b.add(
        region,
        TIER,
        alb_security_group(region).name(),
        Spec::SecurityGroup(SecurityGroupSpec {
            vpc: vpc(region),
            name: format!("{app}-{env}-alb"),
            description: format!("{app} {env}: the load balancer (HTTPS, HTTP, test listener)"),
            ingress,
        }),
    );
}

pub(super) fn load_balancing(b: &mut Builder, config: &Config, region: &str) {
    let s = &config.service;
    let name = base_name(config);
    if !config.tls.certificate_arns.contains_key(region) {
        let (first, rest) = config
            .tls
            .domain_names
            .split_first()
            .map_or((String::new(), vec![]), |(f, r)| (f.clone(), r.to_vec()));
        b.add(
            region,
            TIER,
            certificate(region).name(),
            Spec::AcmCertificate(AcmCertificateSpec {
                domain_name: first,
                alternative_names: rest,
                hosted_zone: config.tls.hosted_zone.clone().unwrap_or_default(),
            }),
        );
    }
    let public_subnets: Vec<Ref> = config.regions[region]
        .availability_zones
        .iter()
        .map(|az| Ref::Addr(Address::new(region, "network", "subnet", &format!("public-{}", az_letter(az)))))
        .collect();
    let lb = b.add(
        region,
        TIER,
        load_balancer(region).name(),
        Spec::LoadBalancer(LoadBalancerSpec {
            name: name.clone(),
            scheme: "internet-facing".into(),
            subnets: public_subnets,
            security_groups: vec![Ref::Addr(alb_security_group(region))],
            deletion_protection: s.deletion_protection,
            drop_invalid_header_fields: true,
            idle_timeout_secs: i32::try_from(s.idle_timeout_secs).unwrap_or(i32::MAX),
        }),
    );
    for color in ["blue", "green"] {
        let h = &s.health_check;
        b.add(
            region,
            TIER,
            color,
            Spec::TargetGroup(TargetGroupSpec {
                name: format!("{name}-{color}"),
                vpc: vpc(region),
                port: i32::from(s.container_port),
                target_type: "ip".into(),
                health_check_path: h.path.clone(),
                health_check_interval_secs: h.interval_secs as i32,
                health_check_timeout_secs: h.timeout_secs as i32,
                healthy_threshold: h.healthy_threshold as i32,
                unhealthy_threshold: h.unhealthy_threshold as i32,
                matcher: h.matcher.clone(),
                deregistration_delay_secs: s.deregistration_delay_secs as i32,
            }),
        );
    }
    let (blue, green) = (Ref::Addr(target_group(region, "blue")), Ref::Addr(target_group(region, "green")));
    let https = |port: u16, to: &Ref, other: &Ref| ListenerSpec {
        load_balancer: Ref::Addr(lb.clone()),
        port: i32::from(port),
        protocol: "HTTPS".into(),
        ssl_policy: Some(s.ssl_policy.clone()),
        certificate: Some(certificate_ref(config, region)),
        action: ListenerAction::Forward { target_group: to.clone(), swappable_with: Some(other.clone()) },
    };
    b.add(region, TIER, listener(region, "https").name(), Spec::Listener(https(443, &blue, &green)));
    b.add(
        region,
        TIER,
        listener(region, "http").name(),
        Spec::Listener(ListenerSpec {
            load_balancer: Ref::Addr(lb.clone()),
            port: 80,
            protocol: "HTTP".into(),
            ssl_policy: None,
            certificate: None,
            action: ListenerAction::Redirect {
                protocol: "HTTPS".into(),
                port: "443".into(),
                status_code: "HTTP_301".into(),
            },
        }),
    );
    b.add(
        region,
        TIER,
        listener(region, "test").name(),
        Spec::Listener(https(s.test_listener_port, &green, &blue)),
    );
}
