"""`aeseek search`: the command line as a client of a running service, over HTTP (httpx)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 60.0


class ClientError(Exception):
    """The service could not be reached, or answered with an error; the message says which and why."""


@dataclass(frozen=True)
class Answer:
    """One image's search: its path and the service's JSON answer."""

    image: Path
    body: dict[str, Any]


def search_images(url: str, images: list[Path], k: int, api_key: str | None = None) -> list[Answer]:
    """POST each image to `url`/api/v1/search and return the answers, in order."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    answers = []
    with httpx.Client(base_url=url.rstrip("/"), timeout=TIMEOUT_S, headers=headers) as client:
        for image in images:
            try:
                data = image.read_bytes()
            except OSError as error:
                raise ClientError(f"cannot read {image}: {error.strerror}") from None
            try:
                response = client.post("/api/v1/search", params={"k": k}, files={"file": (image.name, data)})
            except httpx.TransportError as error:
                raise ClientError(f"cannot reach the service at {url} ({error}); is `aeseek serve` running?") from None
            if response.status_code != 200:
                raise ClientError(f"{image}: {_describe(response)}")
            answers.append(Answer(image, response.json()))
    return answers


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"the service answered {response.status_code} {body['code']}: {body['message']}"
    except (ValueError, KeyError, TypeError):
        return f"the service answered {response.status_code} (not aeseek's error format: is {response.url} aeseek?)"


def format_answers(answers: list[Answer]) -> str:
    """A readable table of neighbours per image: rank, id, label, distance, score."""
    blocks = []
    for answer in answers:
        model = answer.body["model"]
        lines = [
            f"{answer.image}: nearest of model {model['version']} ({model['variant']}), "
            f"{answer.body['query_ms']:.1f} ms",
            f"{'rank':>4}  {'id':>7}  {'label':>5}  {'distance':>8}  {'score':>5}",
        ]
        lines += [
            f"{r['rank']:>4}  {r['id']:>7}  {r['label']:>5}  {r['distance']:>8.3f}  {r['score']:>5.3f}"
            for r in answer.body["results"]
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def answers_json(answers: list[Answer]) -> str:
    """The answers as one JSON document: a list of {image, answer}."""
    return json.dumps([{"image": str(a.image), "answer": a.body} for a in answers], indent=2)
