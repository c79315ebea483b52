"""`make demo`: the main job end to end, offline, told as a story a newcomer can follow.

moto server (its own process) stands in for DynamoDB, SNS, SQS, Secrets Manager and EventBridge; the
upstream simulator, the Slack sink (webhooks and the Web API) and the webhook receiver listen on
real loopback sockets. Jobs, a watch and routes are registered through the HTTP API, then the real
handler code runs cycle after cycle (poller, then notifier) while the simulator walks each scripted
job through its statuses.

The screen shows a timeline (each cycle, each transition, each message as delivered), then each
Slack channel as a person sees it (one living thread per job), what the signed webhook and the
EventBridge bus received, what was e-mailed, and the closing self-check: the demo exits 1 if any
transition is missing, doubled or unexpected at any destination. Log lines go to `.demo/demo.log`.

- `scenario`: the jobs and what their upstreams do (add a job there);
- `routes`: the routes configured, and where each transition must therefore arrive;
- `observe`: reading every destination; `checks`: the self-check; `screen`: the rendering;
- `run`: starting everything and running the cycles.
"""

from __future__ import annotations
