"""Signed verification receipts: checked by an independent JWS implementation (jwcrypto) with only
the published keys, tamper-evident in every field, batch inclusion proofs, key rotation and
revocation, case receipts by case number, and the JWKS over HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from hashlib import sha256
from pathlib import Path

import grpc
import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from hub.client import batch_receipt_documents, receipt_document, verify_receipt
from hub.governance.pki import CertificateAuthority
from hub.governance.receipt_keys import ReceiptKeyring
from hub.proofs import merkle
from hub.proofs.receipt_format import canonical
from hub.v1 import cases_pb2, cases_pb2_grpc, common_pb2, receipts_pb2, receipts_pb2_grpc, verification_pb2
from tests.hubtest import CTX, RunningHub, resident, running_hub
from tests.readme import blocks
from tests.test_cases import DATE, DEPARTMENT, A, _grant_everything, _load

ID = "510603199001011231"
OTHER_ID = "510603199001011258"


# -- an independent checker: jwcrypto, hashlib and the published JWKS, none of the hub's code -------


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def independent_check(token: str, jwks_json: str) -> dict:
    """The statement, if the signature holds under a key of the JWKS; raises otherwise."""
    keys = jwk.JWKSet.from_json(jwks_json)
    signed = jws.JWS()
    signed.deserialize(token)
    key = keys.get_key(signed.jose_header["kid"])
    if key is None:
        raise LookupError("unknown key")
    signed.verify(key, alg="Ed25519")
    return json.loads(signed.payload)


def _jcs_values(values: list[str]) -> bytes:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()


def _tampered(token: str, change) -> str:
    header, payload, signature = token.split(".")
    statement = json.loads(_unb64u(payload))
    change(statement)
    return ".".join([header, _b64u(json.dumps(statement).encode()), signature])


def _jwks(hub: RunningHub) -> str:
    return receipts_pb2_grpc.ReceiptsStub(hub.channel).GetKeys(receipts_pb2.GetKeysRequest()).jwks_json


def _verify(hub: RunningHub, key: str = ID, **request) -> verification_pb2.VerifyResponse:
    return hub.verification.Verify(
        verification_pb2.VerifyRequest(
            resource="population.resident",
            key=key,
            claims=[verification_pb2.Claim(field="district_code", values=["510603"])],
            context=CTX,
            **request,
        )
    )


# -- the format -----------------------------------------------------------------------------------


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962's recursive Merkle tree hash, the definition the bottom-up tree must equal."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_merkle_tree_is_rfc6962_and_every_proof_checks() -> None:
    for n in range(1, 40):
        leaves = [merkle.leaf_hash(bytes([i % 256, i // 256])) for i in range(n)]
        levels = merkle.build_levels(b"".join(leaves))
        assert levels[-1] == _mth(leaves)
        assert merkle.unpack(merkle.pack(levels), n) == levels
        for i in range(n):
            proof = merkle.inclusion_proof(levels, i)
            assert merkle.root_from_proof(leaves[i], i, n, proof) == levels[-1]
            if n > 1:
                assert merkle.root_from_proof(leaves[(i + 1) % n], i, n, proof) != levels[-1]


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_statements_are_rfc8785_canonical(statement) -> None:
    assert canonical(statement) == rfc8785.dumps(statement)


# -- single Verify ----------------------------------------------------------------------------------


def test_verify_receipt_checked_independently_and_tamper_evident(hub: RunningHub) -> None:
    written = hub.publish("population.resident", [resident(ID)])
    hub.verify("population.resident", ID, after=written)
    plain = _verify(hub)
    assert not plain.HasField("receipt")
    answer = _verify(hub, receipt=True)
    assert answer.found and answer.match and answer.HasField("receipt") and len(answer.receipt.salt) == 16
    jwks_json = _jwks(hub)
    token, salt = answer.receipt.jws, answer.receipt.salt

    statement = independent_check(token, jwks_json)
    assert statement["kind"] == "verify" and statement["resource"] == "population.resident"
    assert statement["caller"]["department"] == "public_security"
    assert (statement["purpose"], statement["case_number"]) == ("legal_basis", CTX.case_number)
    assert statement["answer"] == {"found": True, "match": True, "claims": [True]}
    assert statement["watermark"]["offsets"] == list(answer.watermark.offsets)
    assert abs(statement["iat"] - time.time()) < 600
    # the ID is not in the receipt; with the salt, the holder of the ID recognises it
    assert ID not in _unb64u(token.split(".")[1]).decode()
    assert statement["subject"] == _b64u(sha256(salt + ID.encode()).digest())
    assert statement["claims"][0]["values"] == _b64u(sha256(salt + _jcs_values(["510603"])).digest())

    tamperings = {
        "answer": lambda s: s["answer"].update(match=False),
        "claim answer": lambda s: s["answer"].update(claims=[False]),
        "subject": lambda s: s.update(subject=_b64u(sha256(salt + OTHER_ID.encode()).digest())),
        "claim values": lambda s: s["claims"][0].update(values=_b64u(b"x" * 32)),
        "claim op": lambda s: s["claims"][0].update(op="not_equals"),
        "case number": lambda s: s.update(case_number="DY-OTHER"),
        "caller": lambda s: s["caller"].update(department="tax"),
        "watermark": lambda s: s["watermark"].update(offsets=[0] * len(s["watermark"]["offsets"])),
        "time": lambda s: s.update(iat=s["iat"] - 86400),
        "resource": lambda s: s.update(resource="population.household"),
    }
    for name, change in tamperings.items():
        altered = _tampered(token, change)
        with pytest.raises(JWException):
            independent_check(altered, jwks_json)
        check = verify_receipt({"receipt": altered, "salt": _b64u(salt)}, json.loads(jwks_json))
        assert not check.ok and check.problems[0].startswith("bad signature"), name

    # the hub's own checker, as a reviewer uses it
    document, jwks = receipt_document(answer.receipt), json.loads(jwks_json)
    assert verify_receipt(document, jwks, subject=ID, claims={"district_code": ["510603"]}).ok
    wrong = verify_receipt(document, jwks, subject=OTHER_ID, claims={"district_code": ["510681"], "status": ["x"]})
    assert wrong.problems == [
        "subject applicant does not match: this receipt is not about the ID held",
        "claim on district_code: the value(s) 510681 do not match the receipt",
        "claim on status: the receipt states none",
    ]
    assert verify_receipt({"receipt": token}, jwks, subject=ID).problems == [
        "no salt in the document, cannot compare the subject"
    ]
    stranger = ReceiptKeyring(hub.settings.data_dir / "elsewhere")
    stranger.ensure()
    unknown = verify_receipt(document, stranger.jwks())
    assert len(unknown.problems) == 1 and unknown.problems[0].startswith("signed by an unknown key")


# -- VerifyBatch: one signature, a proof per key ------------------------------------------------------


def _rfc9162_root(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 2.1.3.2, written out again here so the proof is checked without the hub's code."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0
    return r


def test_batch_receipt_one_signature_and_a_proof_per_key(hub: RunningHub) -> None:
    from hub.datagen.city import resident_ids

    ids = resident_ids(14, 37)
    known = ids[:30]
    written = hub.publish(
        "population.resident", [resident(r, district_code="510681" if i % 3 else "510603") for i, r in enumerate(known)]
    )
    hub.verify("population.resident", known[0], after=written)
    keys = [*ids, "51060319900101123X"]  # 7 unknown, one malformed
    request = verification_pb2.VerifyBatchRequest(
        resource="population.resident",
        keys=keys,
        claims=[
            verification_pb2.ClaimColumn(field="status", values=["registered"]),
            verification_pb2.ClaimColumn(
                field="district_code", values=["510603" if i % 2 else "510681" for i in range(len(keys))]
            ),
        ],
        context=CTX,
        receipt=True,
    )
    response = hub.verification.VerifyBatch(request)
    jwks_json = _jwks(hub)
    statement = independent_check(response.receipt.jws, jwks_json)
    assert statement["kind"] == "verify_batch" and statement["keys"] == len(keys)
    assert [c["per_key"] for c in statement["claims"]] == [False, True]
    assert statement["claims"][0]["values"] == _b64u(
        sha256(response.receipt.salt + _jcs_values(["registered"])).digest()
    )
    assert len(response.receipt.key_salts) == 16 * len(keys)

    documents = batch_receipt_documents(request, response)
    jwks = json.loads(jwks_json)
    for i, (key, document) in enumerate(zip(keys, documents, strict=True)):
        value = request.claims[1].values[i]
        check = verify_receipt(document, jwks, subject=key, claims={"district_code": [value], "status": ["registered"]})
        assert check.ok, (i, check.problems)
        leaf = document["leaf"]
        assert (leaf["found"], leaf["match"]) == (response.found[i], response.match[i])
        # one person's document says nothing of the others: only its own leaf, salt and the siblings' hashes
        assert all(k not in json.dumps(document) for k in keys)

    # independently: the leaf from its parts, the path to the signed root, with hashlib alone
    i, document = 4, documents[4]
    key_salt = _unb64u(document["leaf"]["salt"])
    own_value = sha256(key_salt + _jcs_values([request.claims[1].values[i]])).digest()
    data = key_salt + bytes([response.found[i], response.match[i]])
    data += bytes([c.matched[i] for c in response.claims]) + own_value + keys[i].encode()
    path = [_unb64u(p) for p in document["proof"]]
    assert _b64u(_rfc9162_root(sha256(b"\x00" + data).digest(), i, len(keys), path)) == statement["root"]

    # a changed answer, another subject, a cut or missing proof: each is caught and named
    not_root = (
        "the leaf does not lead to the signed root: the subject is not the ID verified, "
        "or the leaf or the proof was altered"
    )
    flipped = {**document, "leaf": {**document["leaf"], "match": not document["leaf"]["match"]}}
    assert verify_receipt(flipped, jwks, subject=keys[i]).problems == [not_root]
    assert verify_receipt(document, jwks, subject=keys[5]).problems == [not_root]
    assert verify_receipt({**document, "proof": document["proof"][1:]}, jwks, subject=keys[i]).problems == [not_root]
    bare = {"receipt": document["receipt"], "salt": document["salt"]}
    assert verify_receipt(bare, jwks, subject=keys[i]).problems == [
        "missing inclusion proof: a batch receipt needs the key's leaf and proof"
    ]
    assert verify_receipt(document, jwks).problems == [
        "a batch receipt is checked with the subject's ID: give the subject"
    ]
    assert verify_receipt(documents[5], jwks, subject=keys[5], claims={"district_code": ["510681"]}).problems == [
        "claim on district_code: the value(s) 510681 do not match the receipt"
    ]

    # keys of different lengths (here a malformed one) take the row-by-row path to the same leaves
    mixed = verification_pb2.VerifyBatchRequest(
        resource="population.resident", keys=[known[0], "5106", "身份证"], context=CTX, receipt=True
    )
    answer = hub.verification.VerifyBatch(mixed)
    for key, document in zip(mixed.keys, batch_receipt_documents(mixed, answer), strict=True):
        assert verify_receipt(document, jwks, subject=key).ok

    with pytest.raises(grpc.RpcError) as err:
        hub.verification.VerifyBatch(
            verification_pb2.VerifyBatchRequest(resource="population.resident", context=CTX, receipt=True)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "keys: a receipt needs" in err.value.details()


# -- keys: rotation with overlap, retirement, revocation for compromise --------------------------------


def _receipt_signed_by_new_key(hub: RunningHub, old_kid: str, timeout: float = 120) -> verification_pb2.VerifyResponse:
    """Hubs reload the keyring within a second: wait for a receipt under another key."""
    deadline = time.monotonic() + timeout
    while True:
        answer = _verify(hub, receipt=True)
        if _kid(answer.receipt.jws) != old_kid:
            return answer
        assert time.monotonic() < deadline, "the hub kept signing with the old key"
        time.sleep(0.1)


def _kid(token: str) -> str:
    return json.loads(_unb64u(token.split(".")[0]))["kid"]


def test_rotation_keeps_old_receipts_valid_and_revocation_names_the_compromise(hub: RunningHub) -> None:
    written = hub.publish("population.resident", [resident(ID)])
    hub.verify("population.resident", ID, after=written)
    first = _verify(hub, receipt=True)
    first_kid = _kid(first.receipt.jws)
    keyring = ReceiptKeyring(hub.settings.data_dir / "dev-keys")

    keyring.rotate(overlap_s=0)  # the old key retires now
    second = _receipt_signed_by_new_key(hub, first_kid)
    second_kid = _kid(second.receipt.jws)
    jwks_json = _jwks(hub)
    jwks = json.loads(jwks_json)
    assert {k["kid"] for k in jwks["keys"]} == {first_kid, second_kid}
    keys = keyring.manifest().keys
    # Judged a second after the old key's end (whole seconds): now may still be the rotation's second.
    after = next(k.not_after for k in keys if k.kid == first_kid) + 1
    states = {k.kid: k.state(after) for k in keys}
    assert states == {first_kid: "retired", second_kid: "active"}
    for answer in (first, second):  # a retired key's receipts still verify, independently and by the hub
        independent_check(answer.receipt.jws, jwks_json)
        assert verify_receipt(receipt_document(answer.receipt), jwks, subject=ID).ok

    keyring.revoke(second_kid, "private key leaked")
    third = _receipt_signed_by_new_key(hub, second_kid)
    jwks_json = _jwks(hub)
    jwks = json.loads(jwks_json)
    assert second_kid not in {k["kid"] for k in jwks["keys"]}
    with pytest.raises(LookupError):  # off-the-shelf verifiers no longer find the key
        independent_check(second.receipt.jws, jwks_json)
    [problem] = verify_receipt(receipt_document(second.receipt), jwks).problems
    assert (
        problem.startswith(f"signed by key {second_kid}, revoked for compromise at ")
        and "private key leaked" in problem
    )
    assert verify_receipt(receipt_document(first.receipt), jwks).ok
    assert verify_receipt(receipt_document(third.receipt), jwks).ok

    # a retired key cannot vouch for a receipt dated after its window
    late = {
        **jwks,
        "key_validity": [
            {**v, "not_after": v["not_before"] - 1} if v["kid"] == first_kid else v for v in jwks["key_validity"]
        ],
    }
    assert "outside key" in verify_receipt(receipt_document(first.receipt), late).problems[0]


# -- cases: receipts stored with the case event, fetched by case number ----------------------------------


def test_case_receipts_by_case_number(layout_hub: RunningHub) -> None:
    hub = layout_hub  # a case's evidence from both shards, in one receipt
    _load(hub)
    _grant_everything(hub, DEPARTMENT)
    cases = cases_pb2_grpc.CasesStub(hub.client(DEPARTMENT).channel)
    submit = cases_pb2.SubmitRequest(
        case_number="DY-2017-RCPT-0001",
        case_type="household_transfer",
        applicant=A,
        date=DATE,
        params={"district": "510603"},
        purpose=common_pb2.PURPOSE_LEGAL_BASIS,
        receipt=True,
    )
    result = cases.Submit(submit).result
    assert result.complete and result.HasField("receipt")
    unsigned = cases.Submit(
        cases_pb2.SubmitRequest(**{**_fields(submit), "case_number": "DY-2017-RCPT-0002", "receipt": False})
    ).result
    assert not unsigned.HasField("receipt")
    second = submit.__class__(**{**_fields(submit), "case_number": "DY-2017-RCPT-0003"})
    batch = cases.SubmitBatch(cases_pb2.SubmitBatchRequest(cases=[submit, second])).results
    # The case number already recorded answers with its recorded receipt (submission is idempotent).
    assert batch[0].receipt.jws == result.receipt.jws and batch[1].HasField("receipt")

    reviewer = receipts_pb2_grpc.ReceiptsStub(hub.client(DEPARTMENT).channel)
    found = reviewer.GetCaseReceipts(receipts_pb2.GetCaseReceiptsRequest(case_number=submit.case_number)).receipts
    assert [r.receipt.jws for r in found] == [result.receipt.jws]
    assert all(r.department == DEPARTMENT and r.receipt.salt for r in found)
    admin = receipts_pb2_grpc.ReceiptsStub(hub.client("hub_admin").channel)
    later = admin.GetCaseReceipts(receipts_pb2.GetCaseReceiptsRequest(case_number=second.case_number)).receipts
    assert [r.receipt.jws for r in later] == [batch[1].receipt.jws]

    jwks_json = _jwks(hub)
    statement = independent_check(found[0].receipt.jws, jwks_json)
    assert statement["kind"] == "case" and statement["complete"] is True
    assert [(e["name"], e["outcome"], e["role"]) for e in statement["evidence"]] == [
        ("registered_resident", "satisfied", "applicant"),
        ("home_in_district", "satisfied", "applicant"),
    ]
    document = receipt_document(found[0].receipt)
    jwks = json.loads(jwks_json)
    assert verify_receipt(document, jwks, subject=A, claims={"district_code": ["510603"]}).ok
    assert verify_receipt(document, jwks, subject=OTHER_ID).problems == [
        "subject applicant does not match: this receipt is not about the ID held"
    ]

    for stub, number, code in (
        (reviewer, "DY-2017-RCPT-0002", grpc.StatusCode.NOT_FOUND),  # submitted without a receipt
        (reviewer, " ", grpc.StatusCode.INVALID_ARGUMENT),
        (
            receipts_pb2_grpc.ReceiptsStub(hub.client("civil_affairs").channel),
            submit.case_number,
            grpc.StatusCode.PERMISSION_DENIED,
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            stub.GetCaseReceipts(receipts_pb2.GetCaseReceiptsRequest(case_number=number))
        assert err.value.code() == code, number
        assert "case" in err.value.details()


def _fields(message) -> dict:
    return {f.name: v for f, v in message.ListFields()}


# -- the JWKS over HTTP ------------------------------------------------------------------------------


def test_jwks_over_http(tmp_path) -> None:
    """On a bare aiohttp app, as the public site mounts it."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from hub.public.jwks import JWKS_PATH, jwks_handler

    keyring = ReceiptKeyring(tmp_path)
    keyring.ensure()
    app = web.Application()
    app.router.add_get(JWKS_PATH, jwks_handler(keyring.jwks))

    async def fetch() -> bytes:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            response = await client.get(JWKS_PATH)
            assert response.status == 200 and response.content_type == "application/jwk-set+json"
            assert "max-age" in response.headers["Cache-Control"]
            return await response.read()

    body = asyncio.run(fetch())
    assert orjson.loads(body) == keyring.jwks()
    assert jwk.JWKSet.from_json(body.decode()).get_key(keyring.signing_key()[0]) is not None


# -- the README's walkthrough: a reviewer checks a case's receipts from the command line ----------------


def test_readme_reviewer_walkthrough(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = tmp_path / "pki"
    ca = CertificateAuthority(pki)
    ca.init()
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub", tls_dir=pki) as hub:
        _load(hub)
        _grant_everything(hub, DEPARTMENT)
        clerk, reviewer = ca.issue(DEPARTMENT), ca.issue("hub_admin")
        env = {
            "HUB": hub.address,
            "PKI": str(pki),
            "CLERK_CERT": str(clerk.cert_path),
            "CLERK_KEY": str(clerk.key_path),
            "REVIEWER_CERT": str(reviewer.cert_path),
            "REVIEWER_KEY": str(reviewer.key_path),
            "APPLICANT": A,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        [(_, python), (_, shell)] = blocks("receipts")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(python, "README.md receipts", "exec"), {})
        assert printed.getvalue().strip() == "DY-2017-HJ-000042 complete signed"
        outputs = [
            subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
            for line in shell.strip().splitlines()
        ]
        assert outputs[-1].startswith("OK      case receipt, case DY-2017-HJ-000042, approval_bureau (legal_basis)")
        assert "household_transfer complete; registered_resident=satisfied, home_in_district=satisfied" in outputs[-1]
        assert outputs[-1].endswith("all 1 receipts verified\n")

        wrong = subprocess.run(
            ["hub", "receipts", "verify", "case.json", "--jwks", "jwks.json", "--subject", OTHER_ID],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert wrong.returncode == 1 and wrong.stdout.startswith("FAILED")
        assert "subject applicant does not match: this receipt is not about the ID held" in wrong.stdout
        missing = subprocess.run(
            ["hub", "receipts", "verify", "nothing.json", "--jwks", "jwks.json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert (
            missing.returncode == 1 and missing.stderr.strip() == "receipt file nothing.json: No such file or directory"
        )


def test_key_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hub.cli import main

    keys_dir = ["--pki-dir", str(tmp_path)]
    assert main(["receipts", "keys", "rotate", *keys_dir]) == 0
    first = capsys.readouterr().out.split()[3].rstrip(";")
    assert main(["receipts", "keys", "rotate", "--overlap-hours", "2", *keys_dir]) == 0
    second = capsys.readouterr().out.split()[3].rstrip(";")
    keyring = ReceiptKeyring(tmp_path)
    assert [k.kid for k in keyring.manifest().keys] == [first, second]
    assert time.time() < keyring.manifest().keys[0].not_after <= time.time() + 2 * 3600  # the overlap
    assert main(["receipts", "keys", "revoke", first, "--reason", "laptop stolen", *keys_dir]) == 0
    assert keyring.jwks()["revoked"][0]["reason"] == "laptop stolen"
    assert main(["receipts", "keys", "list", *keys_dir]) == 0
    listed = capsys.readouterr().out
    assert "revoked" in listed and "active" in listed
    dashed = "-" + "A" * 42  # a thumbprint begins with "-" one time in 64: an id, not an unknown option
    for argv, message in (
        (
            ["receipts", "keys", "revoke", dashed, *keys_dir],
            f"{dashed}: no such receipt key (see 'hub receipts keys list')",
        ),
        (["receipts", "keys", "revoke", *keys_dir], "revoke: name the key id, as 'hub receipts keys list' shows it"),
        (["receipts", "keys", "revoke", "nope", *keys_dir], "nope: no such receipt key (see 'hub receipts keys list')"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert str(exit_.value) == message
