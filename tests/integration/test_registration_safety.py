"""Registration refuses what would later mislead a reader or fail every poll, through the API and the
CLI alike, and leaves an audit line naming who registered or removed what.

- ids, names and labels with control, bidi-override or invisible characters are refused (one field,
  one message), and whatever is stored is printed with such characters escaped;
- a secret name that does not exist is refused unless the caller accepts it explicitly;
- a job untracked and tracked again starts a new life: its transitions get new ids, and every
  channel delivers them (the first life's claims cannot swallow them).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jobwatch_tools.api_server import build_event
from jobwatch_tools.cli import main
from jobwatch_tools.local import api_handler, drain_notify_queue, list_jobs, operations, poll_once

from jobwatch.adapters import aws
from jobwatch.api.routes import ROUTES
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state
from jobwatch_devkit.slack_sink import SlackSink

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"


def _post(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    event = build_event(
        "POST", path, [("Content-Type", "application/json")], json.dumps(body).encode(), ROUTES
    )
    result = api_handler(event, None)
    return result["statusCode"], json.loads(result["body"])


def _export(endpoint: str, job_id: str) -> tuple[str, ...]:
    return (EXPORT, "--endpoint", endpoint, "--backend", "s3", "--job-id", job_id)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "job_id",
    ["nightly\n2", "x\u202etxt.exe", "\x1b[31mred", "zero\u200bwidth", "bom\ufeff", "line\u2028sep"],
)
def test_ids_with_invisible_or_control_characters_are_refused_by_the_api(
    deployment: LocalDeployment, sim_url: str, job_id: str
) -> None:
    status, body = _post("/jobs", {"source": EXPORT, "endpoint": sim_url, "jobId": job_id, "backend": "s3"})
    assert status == 422
    assert [p["field"] for p in body["errors"]] == ["jobId"]
    assert "U+" in body["errors"][0]["message"]
    assert list_jobs() == []


def test_labels_with_a_bidi_override_are_refused_by_the_cli_in_one_line(
    deployment: LocalDeployment, sim_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        capsys,
        "track",
        EXPORT,
        "--endpoint",
        sim_url,
        "--backend",
        "s3",
        "--job-id",
        "j1",
        "--label",
        "team=a\u202eb",
    )
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "U+202E" in err
    assert list_jobs() == []


def test_stored_text_is_printed_with_control_characters_escaped(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An upstream error may carry an ANSI escape; `jobwatch show` must not let it reach the terminal."""
    sim.add_job(EXPORT, "ansi", [state("FAILED", error="disk \x1b[2J\x1b[31mfull\u202e")], backend="s3")
    job = deployment.track(source=EXPORT, endpoint=sim_url, job_id="ansi", backend="s3")
    poll_once()
    code, out, _ = _cli(capsys, "show", job.key)
    assert code == 0
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\u{001B}" in out or "full" in out  # escaped, or cleaned by the source before storing


def test_a_secret_that_does_not_exist_is_refused_unless_accepted(
    deployment: LocalDeployment, sim_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "source": EXPORT,
        "endpoint": sim_url,
        "jobId": "j1",
        "backend": "s3",
        "secretName": "jobwatch/typo",
    }
    status, refused = _post("/jobs", body)
    assert status == 422 and refused["errors"][0]["field"] == "secretName"
    assert "does not exist" in refused["errors"][0]["message"]

    code, _, err = _cli(
        capsys,
        "track",
        EXPORT,
        "--endpoint",
        sim_url,
        "--backend",
        "s3",
        "--job-id",
        "j1",
        "--secret",
        "jobwatch/typo",
    )
    assert code == 2 and "does not exist" in err and "--allow-missing-secret" in err
    assert list_jobs() == []

    code, out, _ = _cli(
        capsys,
        "track",
        *(EXPORT, "--endpoint", sim_url, "--backend", "s3", "--job-id", "j1"),
        *("--secret", "jobwatch/typo", "--allow-missing-secret"),
    )
    assert code == 0 and out.startswith("tracking ")
    aws.secretsmanager().create_secret(Name="jobwatch/real", SecretString="k")
    status, _ = _post("/jobs", {**body, "jobId": "j2", "secretName": "jobwatch/real"})
    assert status == 201


def test_registrations_and_removals_are_logged_with_their_caller(
    deployment: LocalDeployment, sim_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(
        capsys, "-v", "track", EXPORT, "--endpoint", sim_url, "--backend", "s3", "--job-id", "a1"
    )
    assert code == 0
    key = out.split()[1]
    code, _, err = _cli(capsys, "-v", "untrack", key)
    assert code == 0
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    audit = {line["message"]: line for line in lines if "actor" in line}
    assert audit["job untracked"]["actor"].startswith("cli")
    assert audit["job untracked"]["jobKey"] == key


def test_a_job_tracked_again_gets_new_transition_ids_and_every_channel_delivers_them(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    sim.add_job(EXPORT, "again", [state("STARTED"), state("FAILED", error="boom")], backend="s3")
    first = deployment.track(source=EXPORT, endpoint=sim_url, job_id="again", backend="s3")
    poll_once()
    poll_once()
    report = drain_notify_queue()
    assert (report.delivered, len(sink.messages()), len(deployment.emails())) == (3, 2, 1)
    first_ids = [t.transition_id for t in deployment.published()]

    assert operations().untrack(first.key)
    sim.add_job(EXPORT, "again", [state("STARTED"), state("FAILED", error="boom again")], backend="s3")
    second = deployment.track(source=EXPORT, endpoint=sim_url, job_id="again", backend="s3")
    assert second.key == first.key and second.life != first.life
    poll_once()
    poll_once()
    report = drain_notify_queue()

    published = deployment.published()
    second_ids = [t.transition_id for t in published[len(first_ids) :]]
    assert [t.event for t in published] == ["STARTED", "FAILED", "STARTED", "FAILED"]
    assert not set(first_ids) & set(second_ids)
    # Two Slack posts and one e-mail of the new life: none swallowed as a duplicate of the first.
    assert (report.delivered, report.duplicates) == (3, 0)
    assert len(sink.messages()) == 4
    assert [e.transition_id for e in deployment.emails()] == [first_ids[1], second_ids[1]]
