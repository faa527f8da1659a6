#!/usr/bin/env python3
"""meshform-node: prepares a VM of a meshform datacenter. Standard library only (any host with python3).

Reads its settings from /etc/meshform/node.json (no secret in it) and its secrets from AWS Secrets
Manager (signed with the instance profile's credentials from IMDSv2) or from a file delivered by the
operator (`meshform secrets host ...`). Subcommands:

  install                 download Consul and Envoy, verify their SHA-256, install them
  secrets                 fetch the secrets; write the trust bundle, the server or local API certificate, tokens,
                          secrets.json
  acl-bootstrap           (servers) create this datacenter's ACL policies and tokens, and update those that changed
  register-service NAME   register a service of this host with its token
  deregister-service NAME remove it
"""
import argparse
import datetime
import hashlib
import hmac
import io
import json
import os
import random
import shutil
import socket
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

ROOT = os.environ.get("MESHFORM_ROOT", "/")  # another root: for a dry run into a directory
NODE_CONFIG = os.environ.get("MESHFORM_NODE_CONFIG", os.path.join(ROOT, "etc/meshform/node.json"))
IMDS = os.environ.get("MESHFORM_IMDS_ENDPOINT", "http://169.254.169.254")
# AWS calls at boot (IMDS, Secrets Manager) retry with exponential backoff and jitter for at most
# RETRY_SECONDS in all (meshform-secrets.service allows a run 20 minutes, then systemd starts it again).
RETRY_SECONDS = float(os.environ.get("MESHFORM_RETRY_SECONDS", "900"))
RETRY_BASE_SECONDS = float(os.environ.get("MESHFORM_RETRY_BASE_SECONDS", "1"))
RETRY_CAP_SECONDS = float(os.environ.get("MESHFORM_RETRY_CAP_SECONDS", "60"))
IMDS_TIMEOUT = float(os.environ.get("MESHFORM_IMDS_TIMEOUT_SECONDS", "5"))
AWS_TIMEOUT = float(os.environ.get("MESHFORM_AWS_TIMEOUT_SECONDS", "20"))
PROCESS_START = time.monotonic()
# Ownership changes need root and the consul user; a dry run into another root skips them.
CHOWN = ROOT == "/" and os.geteuid() == 0


def path(*parts):
    return os.path.join(ROOT, *[p.lstrip("/") for p in parts])


def log(message):
    print("meshform-node: " + message, file=sys.stderr, flush=True)


def fail(message):
    log("error: " + message)
    sys.exit(1)


def load_node():
    with open(NODE_CONFIG, encoding="utf-8") as f:
        node = json.load(f)
    if node.get("format") != 1:
        fail("unsupported node.json format %r" % node.get("format"))
    return node


def write_file(target, content, mode, group=None):
    """Writes atomically with the given mode (and group), so no reader sees a partial or too-open file."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".meshform-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if group is not None and CHOWN:
            shutil.chown(tmp, user="root", group=group)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- install


def download(url, attempts=5):
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                return response.read()
        except (urllib.error.URLError, OSError) as e:
            if attempt == attempts:
                fail("download of %s failed: %s" % (url, e))
            time.sleep(2 * attempt)
    return b""


def install_artifact(artifact, bin_dir):
    data = download(artifact["url"])
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact["sha256"]:
        fail("%s %s: checksum mismatch (expected %s, got %s); refusing to install"
             % (artifact["name"], artifact["version"], artifact["sha256"], digest))
    if artifact["format"] == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            binary = archive.read(artifact["name"])
    else:
        binary = data
    write_file(os.path.join(bin_dir, artifact["name"]), binary, 0o755)
    log("installed %s %s (sha256 %s)" % (artifact["name"], artifact["version"], digest))


def cmd_install(_args):
    node = load_node()
    bin_dir = path("/usr/local/bin")
    os.makedirs(bin_dir, exist_ok=True)
    for artifact in node["artifacts"]:
        install_artifact(artifact, bin_dir)
    for directory, mode in (("/opt/consul/data", 0o700), ("/etc/consul.d", 0o750), ("/etc/consul.d/tls", 0o750),
                            ("/etc/meshform/tokens", 0o750)):
        os.makedirs(path(directory), exist_ok=True)
        os.chmod(path(directory), mode)
    if CHOWN:
        shutil.chown(path("/opt/consul/data"), user="consul", group="consul")
        for directory in ("/etc/consul.d", "/etc/consul.d/tls", "/etc/meshform/tokens"):
            shutil.chown(path(directory), user="root", group="consul")


# --------------------------------------------------------------------------- AWS (IMDSv2 + SigV4), with retries


class AwsCallError(Exception):
    """A failed AWS call: which call, what happened, and whether trying again may help."""

    def __init__(self, call, detail, retryable):
        super().__init__("%s: %s" % (call, detail))
        self.call = call
        self.detail = detail
        self.retryable = retryable


# Error codes of AWS JSON APIs worth retrying at boot: throttling, and what settles once the instance's role
# and its secret's value exist (Terraform may start a host before it writes the secret's value, and IAM
# grants take a while to reach every endpoint).
RETRYABLE_AWS_CODES = ("ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
                       "ResourceNotFoundException", "AccessDeniedException", "ExpiredTokenException",
                       "InternalServiceError", "InternalFailure", "ServiceUnavailable")


def aws_call(call, request, timeout):
    """Runs one HTTP request of an AWS call; raises AwsCallError saying what failed and if it is transient."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        code = ""
        try:
            code = str(json.loads(body).get("__type", "")).split("#")[-1]
        except (ValueError, AttributeError):
            pass
        detail = "HTTP %d%s" % (e.code, " " + code if code else "")
        # 5xx and 429: the service's trouble; IMDS answers 401 to an expired token and 404 before the instance
        # profile's credentials are there
        retryable = e.code >= 500 or e.code in (401, 404, 429) or code in RETRYABLE_AWS_CODES
        raise AwsCallError(call, detail, retryable) from e
    except (socket.timeout, TimeoutError) as e:
        raise AwsCallError(call, "timed out after %g s" % timeout, True) from e
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise AwsCallError(call, "timed out after %g s" % timeout, True) from e
        raise AwsCallError(call, "cannot connect (%s)" % reason, True) from e
    except (ConnectionError, OSError) as e:
        raise AwsCallError(call, "connection failed (%s)" % e, True) from e


def with_retries(what, operation):
    """Runs `operation` until it succeeds, retrying transient AwsCallErrors with exponential backoff and
    jitter for at most RETRY_SECONDS; one journal line per failure says what failed and when it retries. Exits
    non-zero, saying so, on a permanent failure or when the time is up (systemd starts the unit again)."""
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except AwsCallError as e:
            elapsed = time.monotonic() - start
            # one budget for the whole run (secrets, then the private address): the unit's start timeout covers it
            if not e.retryable:
                fail("%s: %s failed (%s), which retrying cannot fix" % (what, e.call, e.detail))
            # equal jitter: half the exponential step, plus up to as much again at random
            step = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** min(attempt - 1, 30))
            delay = step / 2 + random.uniform(0, step / 2)
            left = RETRY_SECONDS - (time.monotonic() - PROCESS_START)
            if delay > left:
                fail("%s: gave up after %d attempts in %.0f s; last failure: %s: %s. systemd starts this unit again"
                     % (what, attempt, elapsed, e.call, e.detail))
            log("%s: %s failed (attempt %d: %s); retrying in %.2f s (gives up in %.0f s)"
                % (what, e.call, attempt, e.detail, delay, left))
            time.sleep(delay)


def imds(resource, token=None, method="GET"):
    request = urllib.request.Request(IMDS + resource, method=method)
    if method == "PUT":
        request.add_header("X-aws-ec2-metadata-token-ttl-seconds", "300")
    if token:
        request.add_header("X-aws-ec2-metadata-token", token)
    return aws_call("IMDS %s %s" % (method, resource), request, IMDS_TIMEOUT)


def instance_credentials():
    token = imds("/latest/api/token", method="PUT")
    resource = "/latest/meta-data/iam/security-credentials/"
    listing = imds(resource, token).strip().splitlines()
    if not listing:
        raise AwsCallError("IMDS GET " + resource, "no instance profile role yet", True)
    try:
        credentials = json.loads(imds(resource + listing[0], token))
        return credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials.get("Token"), token
    except (ValueError, KeyError) as e:
        raise AwsCallError("IMDS GET " + resource + listing[0], "unreadable credentials (%s)" % e, True) from e


def sigv4_headers(method, url, headers, payload, region, service, access_key, secret_key, now):
    """AWS Signature Version 4: returns `headers` plus x-amz-date and Authorization."""
    parsed = urllib.parse.urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = now.strftime("%Y%m%d")
    all_headers = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    all_headers["host"] = parsed.netloc
    all_headers["x-amz-date"] = amz_date
    signed = ";".join(sorted(all_headers))
    canonical_headers = "".join("%s:%s\n" % (k, all_headers[k]) for k in sorted(all_headers))
    query = "&".join(sorted(parsed.query.split("&"))) if parsed.query else ""
    payload_hash = hashlib.sha256(payload).hexdigest()
    canonical = "\n".join([method, parsed.path or "/", query, canonical_headers, signed, payload_hash])
    scope = "%s/%s/%s/aws4_request" % (date, region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])

    def mac(key, msg):
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    key = mac(mac(mac(mac(("AWS4" + secret_key).encode("utf-8"), date), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    result = dict(headers)
    result["X-Amz-Date"] = amz_date
    result["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access_key, scope, signed, signature)
    return result


def secretsmanager_get(secret_id, region, endpoint=None):
    """One attempt: the instance's credentials from IMDSv2, then a SigV4-signed GetSecretValue."""
    access_key, secret_key, session_token, _ = instance_credentials()
    url = endpoint or "https://secretsmanager.%s.amazonaws.com/" % region
    payload = json.dumps({"SecretId": secret_id}).encode("utf-8")
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager.GetSecretValue"}
    if session_token:
        headers["X-Amz-Security-Token"] = session_token
    signed = sigv4_headers("POST", url, headers, payload, region, "secretsmanager", access_key, secret_key,
                           datetime.datetime.now(datetime.timezone.utc))
    request = urllib.request.Request(url, data=payload, headers=signed, method="POST")
    call = "Secrets Manager GetSecretValue of %s" % secret_id
    answer = aws_call(call, request, AWS_TIMEOUT)
    try:
        return json.loads(json.loads(answer)["SecretString"])
    except (ValueError, KeyError, TypeError) as e:
        raise AwsCallError(call, "unreadable answer (%s)" % e, True) from e


def private_ip(node):
    address = node.get("address", {})
    if address.get("source") == "static":
        return address["value"]

    def ask():
        token = imds("/latest/api/token", method="PUT")
        ip = imds("/latest/meta-data/local-ipv4", token).strip()
        if not ip:
            raise AwsCallError("IMDS GET /latest/meta-data/local-ipv4", "empty answer", True)
        return ip

    return with_retries("reading this host's private address from IMDS", ask)


# --------------------------------------------------------------------------- secrets


def fetch_secrets(node):
    source = node["secrets"]
    if source["source"] == "aws-secretsmanager":
        return with_retries(
            "reading the secrets from AWS Secrets Manager",
            lambda: secretsmanager_get(source["secret_id"], source["region"], source.get("endpoint")))
    try:
        with open(path(source["path"]), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        fail("secrets file %s is missing: deliver it with `meshform secrets host` (see the bundle README)"
             % source["path"])
    except (OSError, ValueError) as e:
        fail("secrets file %s cannot be read (%s): deliver it again with `meshform secrets host`"
             % (source["path"], e))
    return {}


def admin_token(secrets):
    """The servers' ACL administration token: the management token on the primary, the replication token on a
    secondary (which never receives the management token)."""
    tokens = secrets["tokens"]
    return tokens.get("management") or tokens["replication"]


def cmd_secrets(_args):
    node = load_node()
    secrets = fetch_secrets(node)
    ip = private_ip(node)
    # The trust bundle (the mesh's roots) for every agent; servers also get the certificate meshform issued
    # for their datacenter (with its intermediate chain) and its key; client agents and gateways the
    # certificate their local HTTPS API serves (loopback names, from the same hierarchy, so local callers
    # verify it with the bundle). No CA key ever reaches a host.
    write_file(path("/etc/consul.d/tls/ca.pem"), secrets["ca_bundle"], 0o644)
    if node["role"] == "server":
        write_file(path("/etc/consul.d/tls/server.pem"), secrets["server_cert"], 0o644)
        write_file(path("/etc/consul.d/tls/server-key.pem"), secrets["server_key"], 0o640, group="consul")
    else:
        write_file(path("/etc/consul.d/tls/client-api.pem"), secrets["client_api_cert"], 0o644)
        write_file(path("/etc/consul.d/tls/client-api-key.pem"), secrets["client_api_key"], 0o640, group="consul")
    tokens = secrets["tokens"]
    for name, value in sorted(tokens.items()):
        write_file(path("/etc/meshform/tokens", name), value, 0o640, group="consul")
    write_file(path("/etc/meshform/node.env"), "PRIVATE_IP=%s\n" % ip, 0o644)
    acl_tokens = {"agent": tokens["agent"]}
    if node["role"] == "server":
        if node["primary"]:
            acl_tokens["initial_management"] = tokens["management"]
        else:
            acl_tokens["replication"] = tokens["replication"]
    agent_secrets = {"encrypt": secrets["gossip_key"], "acl": {"tokens": acl_tokens}}
    # written last: consul.service starts only once this file is there (ExecStartPre), so with everything above
    write_file(path("/etc/consul.d/secrets.json"), json.dumps(agent_secrets, indent=2), 0o640, group="consul")
    log("secrets written for %s %s (role %s)" % (node["datacenter"], ip, node["role"]))


# --------------------------------------------------------------------------- Consul HTTP API


CONSUL_HTTP_ADDR = os.environ.get("MESHFORM_CONSUL_HTTP_ADDR", "https://127.0.0.1:8501")


def consul_api(method, resource, token, body=None, allow_missing=False):
    context = ssl.create_default_context(cafile=path("/etc/consul.d/tls/ca.pem"))
    context.check_hostname = False  # the agent's certificate names the datacenter, not 127.0.0.1
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(CONSUL_HTTP_ADDR + resource, data=data, method=method)
    request.add_header("X-Consul-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as response:
            payload = response.read().decode("utf-8")
            return json.loads(payload) if payload.strip() else None
    except urllib.error.HTTPError as e:
        if allow_missing and e.code in (403, 404):
            detail = e.read().decode("utf-8", "replace")
            if e.code == 404 or "not found" in detail.lower():
                return None
        raise


def read_token(name):
    with open(path("/etc/meshform/tokens", name), encoding="utf-8") as f:
        return f.read().strip()


def policy_changed(current, wanted):
    return current.get("Rules") != wanted["Rules"] or current.get("Description") != wanted["Description"]


def token_changed(current, wanted):
    def names(items):
        return sorted(item["Name"] for item in items or [])

    def identities(items):
        return sorted((i["ServiceName"], sorted(i.get("Datacenters") or [])) for i in items or [])

    return (current.get("Description") != wanted["Description"]
            or names(current.get("Policies")) != names(wanted.get("Policies"))
            or identities(current.get("ServiceIdentities")) != identities(wanted.get("ServiceIdentities")))


def apply_acl(secrets, token):
    """Creates the missing policies and tokens of the plan and updates those whose rules or grants changed
    (policies first: tokens name them). A token keeps its accessor and secret ids."""
    for policy in secrets["acl"]["policies"]:
        current = consul_api("GET", "/v1/acl/policy/name/" + urllib.parse.quote(policy["Name"]), token,
                             allow_missing=True)
        if current is None:
            consul_api("PUT", "/v1/acl/policy", token, policy)
            log("created ACL policy " + policy["Name"])
        elif policy_changed(current, policy):
            consul_api("PUT", "/v1/acl/policy/" + current["ID"], token, dict(policy, ID=current["ID"]))
            log("updated ACL policy " + policy["Name"])
    for wanted in secrets["acl"]["tokens"]:
        current = consul_api("GET", "/v1/acl/token/" + wanted["AccessorID"], token, allow_missing=True)
        if current is None:
            consul_api("PUT", "/v1/acl/token", token, wanted)
            log("created ACL token " + wanted["Description"])
        elif token_changed(current, wanted):
            update = {k: v for k, v in wanted.items() if k != "SecretID"}
            consul_api("PUT", "/v1/acl/token/" + wanted["AccessorID"], token, update)
            log("updated ACL token " + wanted["Description"])


def cmd_acl_bootstrap(_args):
    node = load_node()
    secrets = fetch_secrets(node)
    token = admin_token(secrets)
    deadline = time.time() + 1800
    while True:
        try:
            if consul_api("GET", "/v1/status/leader", token):
                apply_acl(secrets, token)
                return
        except (urllib.error.URLError, OSError, ValueError) as e:
            if untrusted(e):
                fail("Consul's certificate does not verify against the mesh's CA bundle (%s)" % e)
            log("Consul not ready for ACL bootstrap yet (%s)" % e)
        if time.time() > deadline:
            fail("ACL bootstrap did not finish within 30 minutes")
        time.sleep(10)


CONFIG_ENTRIES_STATE = "/var/lib/meshform/config-entries.sha256"


def untrusted(error):
    """True when Consul's certificate does not verify against the mesh's bundle: not worth retrying."""
    return isinstance(error, ssl.SSLCertVerificationError) or isinstance(getattr(error, "reason", None),
                                                                         ssl.SSLCertVerificationError)


def wait_for_leader(token, minutes):
    deadline = time.time() + minutes * 60
    while True:
        try:
            if consul_api("GET", "/v1/status/leader", token):
                return
        except (urllib.error.URLError, OSError, ValueError) as e:
            if untrusted(e):
                fail("Consul's certificate does not verify against the mesh's CA bundle (%s): "
                     "this host's ca.pem and the servers' certificates come from different roots" % e)
            log("Consul not ready yet (%s)" % e)
        if time.time() > deadline:
            fail("Consul has no leader after %d minutes" % minutes)
        time.sleep(10)


def cmd_config_entries(_args):
    """Applies the config entries the servers' secret carries, in order, and deletes the entries meshform
    applied before that are no longer declared. Skips everything when nothing changed since the last run."""
    node = load_node()
    secrets = fetch_secrets(node)
    entries = secrets.get("config_entries")
    if entries is None:
        log("no config entries for this host")
        return
    digest = hashlib.sha256(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest()
    state = path(CONFIG_ENTRIES_STATE)
    if os.path.exists(state):
        with open(state, encoding="utf-8") as f:
            if f.read().strip() == digest:
                log("config entries unchanged")
                return
    token = admin_token(secrets)
    wait_for_leader(token, 30)
    for entry in entries:
        consul_api("PUT", "/v1/config", token, entry)
        log("applied %s %s" % (entry["Kind"], entry["Name"]))
    wanted = {(e["Kind"], e["Name"]) for e in entries}
    kinds = []
    for entry in entries:
        if entry["Kind"] not in kinds:
            kinds.append(entry["Kind"])
    for kind in ["service-intentions", "service-router", "service-splitter", "service-resolver", "service-defaults"]:
        if kind not in kinds:
            kinds.append(kind)
    # dependants first: an intention or router before the defaults it relies on
    for kind in sorted(kinds, key=lambda k: ["service-intentions", "service-router", "service-splitter",
                                              "service-resolver", "service-defaults"].index(k)
                       if k.startswith("service-") else 99):
        for current in consul_api("GET", "/v1/config/" + kind, token) or []:
            meta = current.get("Meta") or {}
            if meta.get("managed-by") == "meshform" and (kind, current["Name"]) not in wanted:
                consul_api("DELETE", "/v1/config/%s/%s" % (kind, urllib.parse.quote(current["Name"])), token)
                log("deleted %s %s (no longer declared)" % (kind, current["Name"]))
    write_file(state, digest + "\n", 0o600)


def service_definition(node, name):
    for service in node.get("services", []):
        if service["Name"] == name:
            return service
    fail("service %s is not declared for this host" % name)
    return {}


def cmd_register_service(args):
    node = load_node()
    definition = service_definition(node, args.name)
    deadline = time.time() + 600
    while True:
        try:
            consul_api("PUT", "/v1/agent/service/register", read_token("service-" + args.name), definition)
            log("registered service %s" % args.name)
            return
        except (urllib.error.URLError, OSError) as e:
            if untrusted(e):
                fail("the local agent's certificate does not verify against the mesh's CA bundle (%s): its HTTPS "
                     "API must serve the client API certificate (tls.https.cert_file)" % e)
            if time.time() > deadline:
                fail("could not register %s: %s" % (args.name, e))
            time.sleep(5)


def cmd_deregister_service(args):
    node = load_node()
    definition = service_definition(node, args.name)
    consul_api("PUT", "/v1/agent/service/deregister/" + definition["ID"], read_token("service-" + args.name))


def main(argv):
    parser = argparse.ArgumentParser(prog="meshform-node")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install").set_defaults(run=cmd_install)
    commands.add_parser("secrets").set_defaults(run=cmd_secrets)
    commands.add_parser("acl-bootstrap").set_defaults(run=cmd_acl_bootstrap)
    commands.add_parser("config-entries").set_defaults(run=cmd_config_entries)
    register = commands.add_parser("register-service")
    register.add_argument("name")
    register.set_defaults(run=cmd_register_service)
    deregister = commands.add_parser("deregister-service")
    deregister.add_argument("name")
    deregister.set_defaults(run=cmd_deregister_service)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
