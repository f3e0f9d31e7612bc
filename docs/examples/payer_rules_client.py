"""A Python client of the ClaimLedger payer-rules service, written from proto/payer_rules.proto alone.

Generate the message module first (grpcio-tools ships protoc):

    python3 -m grpc_tools.protoc -I proto --python_out=/tmp/pr proto/payer_rules.proto

then run, with the generated module on the path:

    PYTHONPATH=/tmp/pr python3 docs/examples/payer_rules_client.py \
        --nats-url nats://127.0.0.1:4222 --subject-prefix claimledger.payer_rules

It asks three things and prints one JSON object per answer on stdout:
1. `decide` for a Medicare-like massage line billed with manual therapy (needs an X modifier),
2. `choose_code` between 97124 and 97140 for a payer that pays 97140 better,
3. `decide` for a payer that does not exist, to show the typed error reply.
"""

import argparse
import asyncio
import json

import nats
from nats.errors import NoRespondersError, TimeoutError as NatsTimeoutError

import payer_rules_pb2 as pb

ERROR_HEADER = "Nats-Service-Error"
ERROR_CODE_HEADER = "Nats-Service-Error-Code"


async def call(nc, subject, request, reply_type):
    """Sends one request; returns ("ok", reply) or ("error", ErrorReply, status)."""
    msg = await nc.request(subject, request.SerializeToString(), timeout=5)
    headers = msg.headers or {}
    if ERROR_CODE_HEADER in headers:
        error = pb.ErrorReply()
        error.ParseFromString(msg.data)
        return "error", error, int(headers[ERROR_CODE_HEADER])
    reply = reply_type()
    reply.ParseFromString(msg.data)
    return "ok", reply, 200


def describe_decision(decision):
    outcome = decision.WhichOneof("outcome")
    described = {
        "outcome": outcome,
        "billed_code": decision.billed_code,
        "billed_units": decision.billed_units,
        "expected_allowed_cents": decision.expected_allowed_cents,
        "rules_version": decision.rules_version,
    }
    if outcome == "rejected":
        described["reason"] = pb.RejectionReason.Name(decision.rejected.reason)
        described["detail"] = decision.rejected.detail
    elif outcome == "accepted_with_changes":
        changes = decision.accepted_with_changes
        described["substitute_code"] = changes.substitute_code
        described["modifiers_to_add"] = list(changes.modifiers_to_add)
        described["units_capped_to"] = changes.units_capped_to
    return described


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--subject-prefix", default="claimledger.payer_rules")
    args = parser.parse_args()

    nc = await nats.connect(args.nats_url)
    try:
        # 97124 with 97140 on the same visit: an NCCI pair whose column 2 code needs XS here.
        line = pb.DecideRequest(
            payer="medicare-like",
            date_of_service="2026-01-05",
            code="97124",
            units=2,
            modifiers=["GP"],
            diagnoses=["M54.50"],
            other_codes_on_visit=["97140"],
            context=pb.VisitContext(referral_date="2025-12-01"),
        )
        status, reply, _ = await call(nc, f"{args.subject_prefix}.decide", line, pb.DecideReply)
        print(json.dumps({"call": "decide", "status": status, **describe_decision(reply.decision)}))

        line.modifiers.append("XS")
        status, reply, _ = await call(nc, f"{args.subject_prefix}.decide", line, pb.DecideReply)
        print(json.dumps({"call": "decide_with_xs", "status": status, **describe_decision(reply.decision)}))

        choice = pb.ChooseCodeRequest(
            payer="lakeshore-mutual",
            date_of_service="2026-01-05",
            supported_codes=["97124", "97140"],
            units=2,
        )
        status, reply, _ = await call(nc, f"{args.subject_prefix}.choose_code", choice, pb.ChooseCodeReply)
        print(json.dumps({
            "call": "choose_code",
            "status": status,
            "code": reply.code,
            "expected_allowed_cents": reply.expected_allowed_cents,
            "reason": reply.reason,
        }))

        unknown = pb.DecideRequest(
            payer="acme-health",
            date_of_service="2026-01-05",
            code="97124",
            units=1,
            diagnoses=["M54.50"],
        )
        status, error, http_status = await call(nc, f"{args.subject_prefix}.decide", unknown, pb.DecideReply)
        print(json.dumps({
            "call": "unknown_payer",
            "status": status,
            "http_status": http_status,
            "code": pb.ErrorCode.Name(error.code),
            "field": error.field,
            "message": error.message,
        }))
    except (NoRespondersError, NatsTimeoutError) as error:
        print(json.dumps({"call": "transport", "status": "unavailable", "message": str(error)}))
        raise
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
