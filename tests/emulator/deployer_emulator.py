"""moto's server plus the deployer's extensions.

    python deployer_emulator.py [moto_server options, e.g. -H 127.0.0.1 -p 5000]

Extensions (served next to moto's own API):

Fix: deleting a NAT gateway releases its Elastic IP association, as AWS does (moto only marks
    the gateway deleted, so re-creating a NAT gateway with the same address fails there).

GET /_deployer/ec2-state
    The live EC2 state of every region, read straight from moto's backends: VPCs, subnets,
    internet gateways, NAT gateways, Elastic IPs, route tables (with routes and associations),
    security groups (a VPC's own "default" group marked "main") and VPC peering connections, each
    with its tags. Tests judge the deployer by this, not by the
    deployer's own view. (moto's /moto-api/data.json is no judge for deletes: it lists every
    object ever created, deleted ones included.) With the AWS model on, states are the modelled
    ones (a NAT gateway still "pending", a peering still "provisioning", ...).

GET/POST /_deployer/model, POST /_deployer/model/reset-counts
    The realistic model of AWS (latency, throttling, faults, lost responses, a crash hook),
    all off unless DEPLOYER_EMU_* variables (or a POST) turn it on: see aws_model.py.
DEPLOYER_EMU_HOSTED_ZONES=deployer.test
    Public Route 53 hosted zones that exist from the start, as an account's own zone would.
"""

import json
import os

import moto.server as moto_server

import aws_model

STATE_PATH = "/_deployer/ec2-state"


def _tags(resource):
    try:
        return {t["key"]: t["value"] for t in resource.get_tags()}
    except Exception:  # pragma: no cover - a resource kind without tags
        return {}


def _region_state(backend):
    subnets = [s for by_az in backend.subnets.values() for s in by_az.values()]
    return {
        "vpcs": [
            {
                "id": v.id,
                "cidr_block": v.cidr_block,
                "is_default": v.is_default,
                "enable_dns_support": bool(v.enable_dns_support),
                "enable_dns_hostnames": bool(v.enable_dns_hostnames),
                "tags": _tags(v),
            }
            for v in backend.vpcs.values()
        ],
        "subnets": [
            {
                "id": s.id,
                "vpc_id": s.vpc_id,
                "cidr_block": s.cidr_block,
                "availability_zone": s.availability_zone,
                "map_public_ip_on_launch": bool(s.map_public_ip_on_launch),
                "tags": _tags(s),
            }
            for s in subnets
        ],
        "internet_gateways": [
            {"id": g.id, "vpc_id": g.vpc.id if g.vpc else None, "tags": _tags(g)}
            for g in backend.internet_gateways.values()
        ],
        "nat_gateways": [
            {
                "id": n.id,
                "state": n.state,
                "subnet_id": n.subnet_id,
                "allocation_id": next((a.get("allocationId") for a in n.address_set), None),
                "tags": _tags(n),
            }
            for n in backend.nat_gateways.values()
        ],
        "addresses": [
            {"allocation_id": a.allocation_id, "public_ip": a.public_ip, "tags": _tags(a)}
            for a in backend.addresses
        ],
        "route_tables": [
            {
                "id": t.id,
                "vpc_id": t.vpc_id,
                "main": bool(getattr(t, "main_association_id", None)),
                "associations": sorted(a["SubnetId"] for a in t.associations if a.get("SubnetId")),
                "routes": [
                    {
                        "destination": r.destination_cidr_block,
                        "target": (
                            (r.gateway.id if getattr(r, "gateway", None) else None)
                            or (r.nat_gateway.id if getattr(r, "nat_gateway", None) else None)
                            or (r.vpc_pcx.id if getattr(r, "vpc_pcx", None) else None)
                            or ("local" if getattr(r, "local", False) else None)
                        ),
                    }
                    for r in t.routes
                    if r.destination_cidr_block
                ],
                "tags": _tags(t),
            }
            for t in backend.route_tables.values()
        ],
        "security_groups": [
            {
                "id": g.id,
                "vpc_id": g.vpc_id,
                "name": g.name,
                # Every VPC's own "default" group is AWS's, not the deployer's.
                "main": g.name == "default",
                "tags": _tags(g),
            }
            for by_vpc in backend.groups.values()
            for g in by_vpc.values()
        ],
        "vpc_peering_connections": [
            {
                "id": p.id,
                "status": p.status["Code"],  # the model's view (provisioning) when it is on
                "vpc_id": p.vpc.id,
                "vpc_region": p.vpc.ec2_backend.region_name,
                "peer_vpc_id": p.peer_vpc.id,
                "peer_region": p.peer_vpc.ec2_backend.region_name,
                "requester_dns_resolution": bool(
                    p.requester_options.get("AllowDnsResolutionFromRemoteVpc")
                ),
                "accepter_dns_resolution": bool(
                    p.accepter_options.get("AllowDnsResolutionFromRemoteVpc")
                ),
                "tags": _tags(p),
            }
            for p in backend.vpc_pcxs.values()
        ],
    }


def ec2_state():
    from moto.ec2.models import ec2_backends

    state = {}
    for account_id in list(ec2_backends.keys()):
        account = ec2_backends[account_id]
        for region in list(account.keys()):
            state[region] = _region_state(account[region])
    return state


def with_extensions(app):
    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") == STATE_PATH:
            body = json.dumps(ec2_state(), default=str).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return wsgi


def _patch_nat_gateway_delete():
    from moto.ec2.models import EC2Backend

    original = EC2Backend.delete_nat_gateway

    def delete_nat_gateway(self, nat_gateway_id):
        nat = original(self, nat_gateway_id)
        for address in getattr(nat, "address_set", []):
            association_id = address.get("associationId")
            if association_id:
                try:
                    self.disassociate_address(association_id=association_id)
                except Exception:  # already disassociated or released
                    pass
        return nat

    EC2Backend.delete_nat_gateway = delete_nat_gateway


def _create_hosted_zones():
    """A real account has its DNS zone before anyone deploys into it; the emulator starts empty.
    DEPLOYER_EMU_HOSTED_ZONES (comma-separated names, e.g. `deployer.test`) creates those public
    hosted zones at startup, in the default account, as the account's own. moto.api's reset
    forgets them like everything else."""
    names = [n.strip() for n in os.environ.get("DEPLOYER_EMU_HOSTED_ZONES", "").split(",") if n.strip()]
    if not names:
        return
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.route53.models import route53_backends

    backend = route53_backends[DEFAULT_ACCOUNT_ID]["global"]
    for name in names:
        # As the API stores them: fully qualified, with the trailing dot.
        fqdn = name if name.endswith(".") else f"{name}."
        backend.create_hosted_zone(fqdn, private_zone=False, caller_reference=f"deployer-emulator-{name}")


def main():
    import moto_fixes

    moto_fixes.apply()
    _create_hosted_zones()
    _patch_nat_gateway_delete()
    # After the NAT patch: the model's delete_nat_gateway wraps the EIP-releasing one.
    aws_model.install()
    original_run_simple = moto_server.run_simple

    def run_simple(host, port, app, *args, **kwargs):
        return original_run_simple(host, port, with_extensions(aws_model.wrap(app)), *args, **kwargs)

    moto_server.run_simple = run_simple
    moto_server.main()


if __name__ == "__main__":
    main()
