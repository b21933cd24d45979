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
GET/POST /_deployer/codedeploy
    The CodeDeploy ECS engine (codedeploy_engine.py): the clock's scale, and a forced failure at
    a named lifecycle event for a group's next deployment or for one deployment. Every request
    the emulator serves first advances the active deployments to now.
POST /_deployer/sns/confirm {"endpoint": "ops@example.com"}
    Confirms that endpoint's pending SNS subscriptions, as its owner answering the confirmation
    message would (moto_fixes.py makes email and HTTPS subscriptions wait for it, as AWS does).
POST /_deployer/rds/login {"region", "identifier", "username", "password"}
    Answers {"ok": true|false}: whether that DB instance would accept those master credentials
    now (a read replica its source's current password, a promoted replica the password it had
    when promoted, a managed-secret instance the password in its secret). 404 {"error"} for an
    unknown instance, 400 {"error"} for a malformed request.
DEPLOYER_EMU_OUTAGE='{"regions": ["us-east-1"], "mode": "refuse"}'
    A region outage from the start (aws_model.py; POST /_deployer/model {"outage": ...} later).
DEPLOYER_EMU_HOSTED_ZONES=deployer.test
    Public Route 53 hosted zones that exist from the start, as an account's own zone would.
DEPLOYER_EMU_ECR_REPLICATION_SECS (default 2)
    How long a pushed image takes to appear in the regions the registry's replication
    configuration names (AWS: usually under 30 minutes). An image pushed to a repository that
    scans on push has a completed scan at once (moto's default findings: one HIGH; inject others
    with moto's POST /moto-api/static/ecr/scan-finding-results).
"""

import json
import os
import time

import moto.server as moto_server

import aws_model
import codedeploy_engine

STATE_PATH = "/_deployer/ec2-state"
CODEDEPLOY_PATH = "/_deployer/codedeploy"
SNS_CONFIRM_PATH = "/_deployer/sns/confirm"
RDS_LOGIN_PATH = "/_deployer/rds/login"


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


def _json_response(start_response, value, status="200 OK"):
    body = json.dumps(value, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def with_extensions(app):
    def wsgi(environ, start_response):
        path = environ.get("PATH_INFO")
        if path == STATE_PATH:
            return _json_response(start_response, ec2_state())
        if path == CODEDEPLOY_PATH:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length > 0 else b""
            try:
                return _json_response(start_response, codedeploy_engine.control(json.loads(raw or b"{}")))
            except (ValueError, KeyError) as e:
                return _json_response(start_response, {"error": str(e)}, "400 Bad Request")
        if path == SNS_CONFIRM_PATH:
            import moto_fixes

            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length > 0 else {}
            if "endpoint" not in body:
                return _json_response(start_response, {"error": "give the endpoint"}, "400 Bad Request")
            return _json_response(start_response, {"confirmed": moto_fixes.confirm_sns_subscriptions(body["endpoint"])})
        if path == RDS_LOGIN_PATH:
            return _rds_login(environ, start_response)
        _replicate_due_images()
        codedeploy_engine.tick()
        return app(environ, start_response)

    return wsgi


def _rds_login(environ, start_response):
    """POST {"region", "identifier", "username", "password"} -> {"ok": bool}: whether the DB
    instance would accept those master credentials now (moto_fixes.rds_login)."""
    import moto_fixes

    if environ.get("REQUEST_METHOD", "GET").upper() != "POST":
        return _json_response(start_response, {"error": "POST a JSON object"}, "405 Method Not Allowed")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length > 0 else {}
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        missing = [k for k in ("region", "identifier", "username", "password") if not isinstance(body.get(k), str)]
        if missing:
            raise ValueError(f"give {', '.join(missing)} (strings)")
    except ValueError as e:
        return _json_response(start_response, {"error": str(e)}, "400 Bad Request")
    try:
        ok = moto_fixes.rds_login(
            body["region"], body["identifier"], body["username"], body["password"], body.get("account_id")
        )
    except LookupError as e:
        return _json_response(start_response, {"error": str(e)}, "404 Not Found")
    return _json_response(start_response, {"ok": ok})


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


PENDING_REPLICATIONS: list[tuple[float, str, str, str, str, str, str]] = []


def _patch_ecr_push():
    """What moto's PutImage leaves out: a repository that scans on push has a scan of the image
    (moto answers ScanNotFoundException until StartImageScan), and the registry's replication
    configuration copies the image to the other regions' repositories of the same name, after
    DEPLOYER_EMU_ECR_REPLICATION_SECS."""
    from moto.ecr.models import ECRBackend

    original = ECRBackend.put_image

    def put_image(self, repository_name, image_manifest, image_tag, image_manifest_mediatype=None, digest=None):
        image = original(self, repository_name, image_manifest, image_tag, image_manifest_mediatype, digest)
        repo = self.repositories[repository_name]
        scanning = getattr(repo, "image_scanning_configuration", None) or {}
        if scanning.get("scanOnPush") and not image.last_scan:
            import datetime

            image.last_scan = datetime.datetime.today()
        delay = float(os.environ.get("DEPLOYER_EMU_ECR_REPLICATION_SECS", "2"))
        config = getattr(self, "replication_config", None) or {}
        for rule in config.get("rules", []):
            filters = rule.get("repositoryFilters") or []
            if filters and not any(repository_name.startswith(f.get("filter", "")) for f in filters):
                continue
            for dest in rule.get("destinations", []):
                if dest.get("region") != self.region_name:
                    PENDING_REPLICATIONS.append(
                        (
                            time.monotonic() + delay,
                            dest.get("registryId") or self.account_id,
                            dest["region"],
                            repository_name,
                            image_manifest,
                            image_tag,
                            image_manifest_mediatype or "",
                        )
                    )
        return image

    ECRBackend.put_image = put_image


def _replicate_due_images():
    if not PENDING_REPLICATIONS:
        return
    from moto.ecr.models import ecr_backends

    now = time.monotonic()
    for item in [p for p in PENDING_REPLICATIONS if p[0] <= now]:
        PENDING_REPLICATIONS.remove(item)
        _, account, region, repository, manifest, tag, media_type = item
        backend = ecr_backends[account][region]
        if repository in backend.repositories:  # AWS creates it; the deployer already has
            try:
                backend.put_image(repository, manifest, tag, media_type or None)
            except Exception:  # already there
                pass


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
    _patch_ecr_push()
    # After the NAT patch: the model's delete_nat_gateway wraps the EIP-releasing one.
    aws_model.install()
    original_run_simple = moto_server.run_simple

    def run_simple(host, port, app, *args, **kwargs):
        return original_run_simple(host, port, with_extensions(aws_model.wrap(app)), *args, **kwargs)

    moto_server.run_simple = run_simple
    moto_server.main()


if __name__ == "__main__":
    main()
