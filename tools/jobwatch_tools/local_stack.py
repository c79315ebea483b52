"""Create the template's data resources on a local AWS emulator and derive the functions' environment.

The demo, the integration tests and `sam local invoke` then run against the table, topics, queues,
subscriptions and secret exactly as `template.yaml` declares them instead of a hand-kept copy.
Everything goes to the endpoint boto3 is configured with (`AWS_ENDPOINT_URL`, i.e. moto server).
Real AWS endpoints are refused unless asked for: there the stack is `sam deploy`'s job, and loose
copies (e.g. a second `jobwatch/slack-webhook` secret) would collide with it.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TableDescriptionTypeDef
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

NAME_PREFIX = "jobwatch"
STACK_NAME = "jobwatch"
WEBHOOK_VARIABLE = "JOBWATCH_SLACK_WEBHOOK_SECRET"
LOCAL_OVERRIDES = frozenset({"AWS_ENDPOINT_URL", "JOBWATCH_ALLOW_HTTP_LOOPBACK"})
"""Declared in the template only so `sam local invoke --env-vars` can set them: left to the caller."""

_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
_REAL_AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class LocalStack(dict[str, str]):
    """The merged function environment; also says what was created and what was skipped and why."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        functions: dict[str, dict[str, str]],
        resources: dict[str, str],
        notes: list[str],
    ) -> None:
        super().__init__(env)
        self.functions = functions
        """Environment per function logical id (Globals merged with the function's own variables)."""
        self.resources = resources
        """Logical id -> physical id (what `Ref` returns) of every resource created or reused."""
        self.notes = notes
        """Resources, variables and settings that were skipped, and why."""


class _NoValue:
    """`AWS::NoValue`: the property or list item disappears."""


NO_VALUE = _NoValue()


class _Unresolvable(Exception):
    """The value cannot be computed locally; the resource or variable is skipped with a note."""


class _Pending(Exception):
    """The value refers to a resource that will be created later in this run."""


def load_template(template_path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template, turning short tags (`!Ref`, `!Sub`, ...) into long forms."""
    import yaml  # type: ignore[import-untyped,unused-ignore]

    class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
        """Safe loader that keeps dates as strings, as CloudFormation does (`Version: 2012-10-17`)."""

    _CfnLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_intrinsic(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix in ("Ref", "Condition"):
            return {suffix: value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{suffix}": value}

    _CfnLoader.add_multi_constructor("!", construct_intrinsic)
    loader = _CfnLoader(template_path.read_text(encoding="utf-8"))
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ValueError(f"{template_path} is not a CloudFormation template")
    return data


def create_local_stack(
    template_path: Path,
    *,
    slack_webhook: str | None,
    session: boto3.Session | None = None,
    allow_real_aws: bool = False,
) -> LocalStack:
    """Create (or reuse) the template's tables, topics, queues, sqs subscriptions and secrets locally.

    Parameters take their defaults. The secret that `JOBWATCH_SLACK_WEBHOOK_SECRET` refers to gets
    `slack_webhook` as its value when given; otherwise a new secret gets the template's placeholder
    and an existing one keeps the value it has. Returns the functions' environment resolved against
    what was created, without `LOCAL_OVERRIDES`, which stay whatever the caller's environment says.
    """
    builder = _LocalStackBuilder(
        load_template(template_path), slack_webhook, session or boto3.Session(), allow_real_aws=allow_real_aws
    )
    return builder.run()


def render_exports(env: Mapping[str, str]) -> str:
    """`export NAME=value` lines, sorted and shell-quoted, for `eval "$(...)"`."""
    lines = []
    for name in sorted(env):
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"not a shell variable name: {name!r}")
        lines.append(f"export {name}={shlex.quote(env[name])}")
    return "".join(f"{line}\n" for line in lines)


def _as_bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _stringify(value: Any) -> str:
    """Render a scalar the way CloudFormation hands it to an API: booleans lower-case, numbers plain."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _referenced_ids(value: Any) -> set[str]:
    """Logical ids a raw template value points at (Ref, GetAtt, or `${Id}` in Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _referenced_ids(item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            found |= _entry_referenced_ids(key, inner)
    return found


def _entry_referenced_ids(key: Any, inner: Any) -> set[str]:
    """Logical ids one mapping entry points at: an intrinsic's target, else whatever is nested in it."""
    if key == "Ref" and isinstance(inner, str):
        return {inner}
    if key == "Fn::GetAtt" and isinstance(inner, list) and inner:
        return {str(inner[0])}
    if key == "Fn::Sub":
        return _sub_referenced_ids(inner)
    return _referenced_ids(inner)


def _sub_referenced_ids(argument: Any) -> set[str]:
    """`${Id}` and `${Id.Attribute}` in a Sub's text, and the references in its variables' values."""
    text = argument[0] if isinstance(argument, list) else argument
    found = {m.split(".", 1)[0] for m in _SUB_VARIABLE.findall(text)} if isinstance(text, str) else set()
    return found | _referenced_ids(argument[1:] if isinstance(argument, list) else [])


def _intrinsic_call(value: Mapping[Any, Any]) -> tuple[str, Any] | None:
    """`{"Ref": x}`, `{"Condition": x}` or `{"Fn::...": x}` as (name, argument); None for other mappings."""
    if len(value) != 1:
        return None
    ((key, argument),) = value.items()
    if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
        return key, argument
    return None


def _throughput(spec: Mapping[str, Any]) -> Any:
    """The spec's provisioned throughput, or the small one a PROVISIONED table needs when none is given."""
    return spec.get("ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})


def _table_index(spec: Mapping[str, Any], *, billing: str, global_index: bool) -> dict[str, Any]:
    """An index as CreateTable takes it; only a global index of a PROVISIONED table has throughput."""
    result = {key: spec[key] for key in ("IndexName", "KeySchema", "Projection")}
    if global_index and billing == "PROVISIONED":
        result["ProvisionedThroughput"] = _throughput(spec)
    return result


def _table_request(name: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """The CreateTable request for a table's (resolved) template properties."""
    billing = str(props.get("BillingMode", "PROVISIONED"))
    gsis = [
        _table_index(gsi, billing=billing, global_index=True)
        for gsi in props.get("GlobalSecondaryIndexes", [])
    ]
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(props)
    if gsis:
        request["GlobalSecondaryIndexes"] = gsis
    if props.get("LocalSecondaryIndexes"):
        request["LocalSecondaryIndexes"] = [
            _table_index(lsi, billing=billing, global_index=False) for lsi in props["LocalSecondaryIndexes"]
        ]
    request.update(_table_options(props))
    return request


def _table_options(props: Mapping[str, Any]) -> dict[str, Any]:
    """Encryption, stream, table class, tags and deletion protection, when the template sets them."""
    options: dict[str, Any] = {}
    if "SSESpecification" in props:
        options["SSESpecification"] = _sse_specification(props["SSESpecification"])
    if "StreamSpecification" in props:
        options["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": props["StreamSpecification"]["StreamViewType"],
        }
    for key in ("TableClass", "Tags"):
        if key in props:
            options[key] = props[key]
    if "DeletionProtectionEnabled" in props:
        options["DeletionProtectionEnabled"] = _as_bool(props["DeletionProtectionEnabled"])
    return options


def _sse_specification(sse: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's `SSEEnabled` is CreateTable's `Enabled`; type and key id pass through."""
    result: dict[str, Any] = {"Enabled": _as_bool(sse.get("SSEEnabled"))}
    for key in ("SSEType", "KMSMasterKeyId"):
        if key in sse:
            result[key] = sse[key]
    return result


class _LocalStackBuilder:
    """One run of `create_local_stack`: resolves intrinsics and creates resources in dependency order."""

    def __init__(
        self,
        template: dict[str, Any],
        slack_webhook: str | None,
        session: boto3.Session,
        *,
        allow_real_aws: bool,
    ) -> None:
        self.template = template
        self.resources_spec: dict[str, dict[str, Any]] = template.get("Resources") or {}
        self.slack_webhook = slack_webhook
        self.region = session.region_name or "us-east-1"
        self.dynamodb: DynamoDBClient = session.client("dynamodb", region_name=self.region)
        self.sns: SNSClient = session.client("sns", region_name=self.region)
        self.sqs: SQSClient = session.client("sqs", region_name=self.region)
        self.secretsmanager: SecretsManagerClient = session.client("secretsmanager", region_name=self.region)
        self.events: Any = session.client("events", region_name=self.region)
        for client in (self.dynamodb, self.sns, self.sqs, self.secretsmanager, self.events):
            host = urlsplit(client.meta.endpoint_url).hostname or ""
            if host.endswith(_REAL_AWS_HOSTS) and not allow_real_aws:
                raise RuntimeError(
                    f"refusing to create a local stack on {client.meta.endpoint_url}: "
                    "set AWS_ENDPOINT_URL to the local emulator (e.g. moto server)"
                )
        self.creators: dict[str, Callable[[str, dict[str, Any]], tuple[str, dict[str, str]]]] = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::SNS::Topic": self._topic,
            "AWS::SQS::Queue": self._queue,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Events::EventBus": self._event_bus,
        }
        self.intrinsics = self._intrinsic_functions()
        self.params = self._parameter_defaults()
        self.conditions: dict[str, bool] = {}
        self.created: dict[str, tuple[str, dict[str, str]]] = {}
        self.pending: list[str] = []
        self.notes: list[str] = []
        self.account_id: str | None = None
        self.webhook_secrets = self._webhook_secret_ids()

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- template evaluation -------------------------------------------------------------------

    def _parameter_defaults(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, spec in (self.template.get("Parameters") or {}).items():
            if "Default" not in spec:
                continue
            default = spec["Default"]
            kind = str(spec.get("Type", "String"))
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                params[name] = (
                    [item.strip() for item in default.split(",")]
                    if isinstance(default, str)
                    else [_stringify(item) for item in default]
                )
            else:
                params[name] = _stringify(default)
        return params

    def _webhook_secret_ids(self) -> set[str]:
        """Secrets the Slack webhook variable points at: they receive `slack_webhook`."""
        raw_values = [self._globals_variables().get(WEBHOOK_VARIABLE)]
        raw_values += [self._function_variables(lid).get(WEBHOOK_VARIABLE) for lid in self._functions()]
        ids = _referenced_ids(raw_values)
        return {lid for lid in ids if self._type(lid) == "AWS::SecretsManager::Secret"}

    def _type(self, logical_id: str) -> str | None:
        spec = self.resources_spec.get(logical_id)
        return str(spec.get("Type")) if isinstance(spec, dict) else None

    def _globals_variables(self) -> dict[str, Any]:
        function_globals = (self.template.get("Globals") or {}).get("Function") or {}
        return dict((function_globals.get("Environment") or {}).get("Variables") or {})

    def _function_variables(self, logical_id: str) -> dict[str, Any]:
        properties = self.resources_spec[logical_id].get("Properties") or {}
        return dict((properties.get("Environment") or {}).get("Variables") or {})

    def _functions(self) -> list[str]:
        """The functions this deployment has: one whose condition is false (the poll worker with one
        shard) does not exist, so its environment is not part of the stack's."""
        return [
            lid
            for lid, spec in self.resources_spec.items()
            if self._type(lid) in _FUNCTION_TYPES
            and ("Condition" not in spec or self.condition(str(spec["Condition"])))
        ]

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            spec = (self.template.get("Conditions") or {}).get(name)
            if spec is None:
                raise _Unresolvable(f"condition {name} is not defined")
            value = self.resolve(spec)
            if not isinstance(value, bool):
                raise _Unresolvable(f"condition {name} does not evaluate to a boolean")
            self.conditions[name] = value
        return self.conditions[name]

    def resolve(self, value: Any) -> Any:
        """Evaluate intrinsic functions against parameter defaults and the resources created so far."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        call = _intrinsic_call(value)
        if call is not None:
            return self._intrinsic(*call)
        resolved = {key: self.resolve(inner) for key, inner in value.items()}
        return {key: inner for key, inner in resolved.items() if inner is not NO_VALUE}

    def _intrinsic(self, key: str, argument: Any) -> Any:
        """One intrinsic function (`Ref`, `Condition`, `Fn::...`) applied to its raw argument."""
        evaluate = self.intrinsics.get(key)
        if evaluate is None:
            raise _Unresolvable(f"intrinsic {key} is not supported locally")
        return evaluate(argument)

    def _intrinsic_functions(self) -> dict[str, Callable[[Any], Any]]:
        """The intrinsics evaluated locally, each taking its raw (unresolved) argument."""
        return {
            "Ref": lambda argument: self._ref(str(argument)),
            "Condition": lambda argument: self.condition(str(argument)),
            "Fn::GetAtt": self._fn_get_att,
            "Fn::Sub": self._sub,
            "Fn::If": self._fn_if,
            "Fn::Equals": self._fn_equals,
            "Fn::Not": self._fn_not,
            "Fn::And": lambda argument: all(self.resolve(argument)),
            "Fn::Or": lambda argument: any(self.resolve(argument)),
            "Fn::Join": self._fn_join,
            "Fn::Split": self._fn_split,
            "Fn::Select": self._fn_select,
            "Fn::FindInMap": self._fn_find_in_map,
            "Fn::Base64": lambda argument: base64.b64encode(
                _stringify(self.resolve(argument)).encode()
            ).decode(),
            "Fn::ToJsonString": lambda argument: json.dumps(self.resolve(argument), separators=(",", ":")),
        }

    def _fn_get_att(self, argument: Any) -> str:
        """`Id.Attribute` (the short form) or `[Id, Attribute]`."""
        parts = argument.split(".", 1) if isinstance(argument, str) else self.resolve(argument)
        return self._get_att(str(parts[0]), str(parts[1]))

    def _fn_if(self, argument: Any) -> Any:
        """Only the branch the condition picks is resolved (the other may refer to what is not created)."""
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(str(name)) else when_false)

    def _fn_equals(self, argument: Any) -> bool:
        left, right = self.resolve(argument)
        return _stringify(left) == _stringify(right)

    def _fn_not(self, argument: Any) -> bool:
        (inner,) = self.resolve(argument)
        return not inner

    def _fn_join(self, argument: Any) -> str:
        delimiter, items = self.resolve(argument)
        return str(delimiter).join(_stringify(item) for item in items)

    def _fn_split(self, argument: Any) -> list[str]:
        delimiter, text = self.resolve(argument)
        return str(text).split(str(delimiter))

    def _fn_select(self, argument: Any) -> Any:
        index, items = self.resolve(argument)
        return items[int(index)]

    def _fn_find_in_map(self, argument: Any) -> Any:
        mapping, top, second = (_stringify(part) for part in self.resolve(argument))
        try:
            return self.template["Mappings"][mapping][top][second]
        except (KeyError, TypeError) as exc:
            raise _Unresolvable(f"Fn::FindInMap {mapping}.{top}.{second} not found") from exc

    def _ref(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        pseudo: dict[str, Callable[[], Any]] = {
            "AWS::Region": lambda: self.region,
            "AWS::Partition": lambda: "aws",
            "AWS::URLSuffix": lambda: "amazonaws.com",
            "AWS::StackName": lambda: STACK_NAME,
            "AWS::AccountId": self._account_id,
            "AWS::StackId": lambda: (
                f"arn:aws:cloudformation:{self.region}:{self._account_id()}:stack/{STACK_NAME}/local"
            ),
            "AWS::NotificationARNs": lambda: [],
            "AWS::NoValue": lambda: NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]()
        if name in (self.template.get("Parameters") or {}):
            raise _Unresolvable(f"parameter {name} has no default")
        return self._resource(name)[0]

    def _get_att(self, logical_id: str, attribute: str) -> str:
        attributes = self._resource(logical_id)[1]
        if attribute not in attributes:
            raise _Unresolvable(f"attribute {logical_id}.{attribute} is not available locally")
        return attributes[attribute]

    def _resource(self, logical_id: str) -> tuple[str, dict[str, str]]:
        if logical_id in self.created:
            return self.created[logical_id]
        if logical_id in self.pending:
            raise _Pending(logical_id)
        kind = self._type(logical_id)
        if kind is None:
            raise _Unresolvable(f"{logical_id} is not declared in the template")
        raise _Unresolvable(f"{logical_id} ({kind}) is not created locally")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1] if len(argument) > 1 else {})
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _stringify(variables[name])
            if "." in name and name.split(".", 1)[0] in self.resources_spec:
                logical_id, attribute = name.split(".", 1)
                return self._get_att(logical_id, attribute)
            return _stringify(self._ref(name))

        return _SUB_VARIABLE.sub(replace, str(text))

    def _account_id(self) -> str:
        """The emulator's account, taken from an ARN it issued (no STS client needed)."""
        if self.account_id is None:
            for _lid, (_ref, attributes) in self.created.items():
                for value in attributes.values():
                    if value.startswith("arn:") and len(value.split(":")) > 4 and value.split(":")[4]:
                        self.account_id = value.split(":")[4]
                        return self.account_id
            topics = self.sns.list_topics().get("Topics", [])
            self.account_id = topics[0]["TopicArn"].split(":")[4] if topics else "123456789012"
        return self.account_id

    # -- orchestration -------------------------------------------------------------------------

    def run(self) -> LocalStack:
        """Create what the template declares and is used locally, then resolve the functions' environment."""
        self._plan()
        if self.slack_webhook is not None and not self.webhook_secrets & set(self.pending):
            self.note(f"no secret referenced by {WEBHOOK_VARIABLE} is created; slack_webhook not stored")
        self._create_pending()
        functions = {lid: self._environment(lid) for lid in self._functions()}
        if functions:
            merged = self._merged_environment(functions)
        else:
            merged = self._resolve_variables("Globals", self._globals_variables())
        return LocalStack(
            merged,
            functions=functions,
            resources={lid: ref for lid, (ref, _attributes) in self.created.items()},
            notes=self.notes,
        )

    def _plan(self) -> None:
        """Queue, in template order, every resource that is created locally and whose condition holds."""
        for logical_id, spec in self.resources_spec.items():
            if self._wanted(logical_id, spec):
                self.pending.append(logical_id)

    def _wanted(self, logical_id: str, spec: Mapping[str, Any]) -> bool:
        """A resource of a kind created locally whose condition, if any, is true; a skip gets a note."""
        kind = self._type(logical_id)
        if kind not in self.creators:
            self.note(f"skipped {logical_id} ({kind}): not needed locally")
            return False
        condition = spec.get("Condition")
        if condition is None:
            return True
        try:
            active = self.condition(str(condition))
        except _Unresolvable as exc:
            self.note(f"skipped {logical_id}: {exc}")
            return False
        if not active:
            self.note(f"skipped {logical_id}: condition {condition} is false")
        return active

    def _create_pending(self) -> None:
        """Create the queued resources in dependency order: a pass retries those waiting for another."""
        while self.pending:
            if not self._create_ready():
                raise ValueError(f"circular references between {', '.join(self.pending)}")

    def _create_ready(self) -> bool:
        """One pass over the queue: create (or skip, with a note) every resource not waiting for another.

        True when the pass dequeued anything; a pass that did not means the rest wait for each other.
        """
        progressed = False
        for logical_id in list(self.pending):
            spec = self.resources_spec[logical_id]
            try:
                self.created[logical_id] = self.creators[str(spec["Type"])](
                    logical_id, spec.get("Properties") or {}
                )
            except _Pending:
                continue
            except _Unresolvable as exc:
                self.note(f"skipped {logical_id}: {exc}")
            self.pending.remove(logical_id)
            progressed = True
        return progressed

    def _merged_environment(self, functions: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
        """One environment for all functions: the first value wins, and a differing one gets a note."""
        merged: dict[str, str] = {}
        for logical_id, env in functions.items():
            for name, value in env.items():
                if name in merged and merged[name] != value:
                    self.note(f"{name}: {logical_id} differs from an earlier function; kept {merged[name]!r}")
                merged.setdefault(name, value)
        return merged

    def _environment(self, logical_id: str) -> dict[str, str]:
        variables = {**self._globals_variables(), **self._function_variables(logical_id)}
        return self._resolve_variables(logical_id, variables)

    def _resolve_variables(self, owner: str, variables: Mapping[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for name, raw in variables.items():
            if name in LOCAL_OVERRIDES:
                self.note(f"{name} is left to the caller's environment")
                continue
            try:
                value = self.resolve(raw)
            except (_Unresolvable, _Pending) as exc:
                self.note(f"{owner}: {name} skipped: {exc}")
                continue
            if value is NO_VALUE:
                continue
            if isinstance(value, (dict, list)):
                self.note(f"{owner}: {name} skipped: not a scalar")
                continue
            env[name] = _stringify(value)
        return env

    def _physical_name(self, logical_id: str, given: Any, *, fifo: bool = False) -> str:
        name = str(given) if given else f"{NAME_PREFIX}-{logical_id}"
        return f"{name}.fifo" if fifo and not name.endswith(".fifo") else name

    # -- resources -----------------------------------------------------------------------------

    def _table(self, logical_id: str, raw: dict[str, Any]) -> tuple[str, dict[str, str]]:
        props = self.resolve(raw)
        name = self._physical_name(logical_id, props.get("TableName"))
        table = self._create_or_update_table(logical_id, _table_request(name, props))
        self._converge_time_to_live(name, props.get("TimeToLiveSpecification"))
        self._converge_backups(logical_id, name, props.get("PointInTimeRecoverySpecification"))
        arn = table["TableArn"]
        attributes = {"Arn": arn}
        if table.get("LatestStreamArn"):
            attributes["StreamArn"] = table["LatestStreamArn"]
        return name, attributes

    def _create_or_update_table(self, logical_id: str, request: dict[str, Any]) -> TableDescriptionTypeDef:
        """Create the table, or add the global indexes an existing one lacks; then wait until it is usable."""
        name = str(request["TableName"])
        try:
            table = self.dynamodb.describe_table(TableName=name)["Table"]
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            table = self.dynamodb.create_table(**request)["TableDescription"]
        else:
            self._add_missing_indexes(logical_id, table, request)
        self.dynamodb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        return table

    def _add_missing_indexes(
        self, logical_id: str, table: TableDescriptionTypeDef, request: dict[str, Any]
    ) -> None:
        """Global indexes added to the template since the table was made (so a rerun upgrades it)."""
        existing = {gsi["IndexName"] for gsi in table.get("GlobalSecondaryIndexes", [])}
        for gsi in request.get("GlobalSecondaryIndexes", []):
            if gsi["IndexName"] not in existing:
                # DynamoDB accepts one index creation per UpdateTable call.
                update: dict[str, Any] = {
                    "TableName": request["TableName"],
                    "AttributeDefinitions": request["AttributeDefinitions"],
                    "GlobalSecondaryIndexUpdates": [{"Create": gsi}],
                }
                self.dynamodb.update_table(**update)
                self.note(f"{logical_id}: added missing index {gsi['IndexName']} to existing table")

    def _converge_time_to_live(self, name: str, ttl: Any) -> None:
        """Turn TTL on for the template's attribute, unless it is on (or turning on) for it already."""
        if not ttl or not _as_bool(ttl.get("Enabled")):
            return
        current = self.dynamodb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        attribute = str(ttl["AttributeName"])
        if (
            current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING")
            or current.get("AttributeName") != attribute
        ):
            self.dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
            )

    def _converge_backups(self, logical_id: str, name: str, pitr: Any) -> None:
        """Point-in-time recovery when the template asks for it; an emulator without it gets a note."""
        if not pitr or not _as_bool(pitr.get("PointInTimeRecoveryEnabled")):
            return
        specification: dict[str, Any] = {"PointInTimeRecoveryEnabled": True}
        if "RecoveryPeriodInDays" in pitr:
            specification["RecoveryPeriodInDays"] = int(pitr["RecoveryPeriodInDays"])
        backups: dict[str, Any] = {"TableName": name, "PointInTimeRecoverySpecification": specification}
        try:
            self.dynamodb.update_continuous_backups(**backups)
        except ClientError as exc:
            self.note(f"{logical_id}: point-in-time recovery not enabled locally ({_error_code(exc)})")

    def _topic(self, logical_id: str, raw: dict[str, Any]) -> tuple[str, dict[str, str]]:
        props = self.resolve(raw)
        fifo = _as_bool(props.get("FifoTopic"))
        name = self._physical_name(logical_id, props.get("TopicName"), fifo=fifo)
        # CreateTopic is idempotent for a name; attributes are then converged one by one.
        arn = self.sns.create_topic(Name=name, Attributes={"FifoTopic": "true"} if fifo else {})["TopicArn"]
        wanted = {
            key: _stringify(props[key])
            for key in (
                "DisplayName",
                "KmsMasterKeyId",
                "ContentBasedDeduplication",
                "SignatureVersion",
                "TracingConfig",
                "ArchivePolicy",
            )
            if key in props
        }
        current = self.sns.get_topic_attributes(TopicArn=arn).get("Attributes", {})
        for key, value in wanted.items():
            if current.get(key) != value:
                self.sns.set_topic_attributes(TopicArn=arn, AttributeName=key, AttributeValue=value)
        return arn, {"TopicArn": arn, "TopicName": name}

    def _event_bus(self, logical_id: str, raw: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """An EventBridge bus; Ref is its name, GetAtt Arn its ARN (created once, kept if it exists)."""
        name = self._physical_name(logical_id, self.resolve(raw).get("Name"))
        try:
            arn = self.events.describe_event_bus(Name=name)["Arn"]
        except self.events.exceptions.ResourceNotFoundException:
            arn = self.events.create_event_bus(Name=name)["EventBusArn"]
        return name, {"Arn": arn, "Name": name}

    def _queue(self, logical_id: str, raw: dict[str, Any]) -> tuple[str, dict[str, str]]:
        props = self.resolve(raw)
        fifo = _as_bool(props.get("FifoQueue"))
        name = self._physical_name(logical_id, props.get("QueueName"), fifo=fifo)
        attributes = {
            key: _stringify(props[key])
            for key in (
                "DelaySeconds",
                "MaximumMessageSize",
                "MessageRetentionPeriod",
                "ReceiveMessageWaitTimeSeconds",
                "VisibilityTimeout",
                "KmsMasterKeyId",
                "KmsDataKeyReusePeriodSeconds",
                "SqsManagedSseEnabled",
                "ContentBasedDeduplication",
                "DeduplicationScope",
                "FifoThroughputLimit",
                "RedrivePolicy",
                "RedriveAllowPolicy",
            )
            if key in props
        }
        try:
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as exc:
            if _error_code(exc) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise
            create: dict[str, Any] = {
                "QueueName": name,
                "Attributes": {**attributes, **({"FifoQueue": "true"} if fifo else {})},
            }
            url = self.sqs.create_queue(**create)["QueueUrl"]
        else:
            if attributes:
                update: dict[str, Any] = {"QueueUrl": url, "Attributes": attributes}
                self.sqs.set_queue_attributes(**update)
        described = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        arn = described["Attributes"]["QueueArn"]
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def _subscription(self, logical_id: str, raw: dict[str, Any]) -> tuple[str, dict[str, str]]:
        protocol = self.resolve(raw.get("Protocol"))
        if protocol != "sqs":
            raise _Unresolvable(f"protocol {protocol} is not subscribed locally")
        props = self.resolve(raw)
        topic_arn, endpoint = str(props["TopicArn"]), str(props["Endpoint"])
        attributes = {
            key: _stringify(props[key])
            for key in (
                "RawMessageDelivery",
                "FilterPolicy",
                "FilterPolicyScope",
                "RedrivePolicy",
                "DeliveryPolicy",
                "ReplayPolicy",
                "SubscriptionRoleArn",
            )
            if key in props
        }
        existing = self._existing_subscription(topic_arn, protocol, endpoint)
        if existing is None:
            arn = self.sns.subscribe(
                TopicArn=topic_arn,
                Protocol=protocol,
                Endpoint=endpoint,
                Attributes=attributes,
                ReturnSubscriptionArn=True,
            )["SubscriptionArn"]
        else:
            arn = existing
            self._converge_subscription(arn, attributes)
        return arn, {}

    def _existing_subscription(self, topic_arn: str, protocol: str, endpoint: str) -> str | None:
        """The topic's subscription of this protocol and endpoint (the last one listed), if there is one."""
        existing = None
        for page in self.sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            for subscription in page.get("Subscriptions", []):
                if subscription.get("Protocol") == protocol and subscription.get("Endpoint") == endpoint:
                    existing = subscription["SubscriptionArn"]
        return existing

    def _converge_subscription(self, arn: str, attributes: Mapping[str, str]) -> None:
        """Set the attributes an existing subscription has otherwise."""
        current = self.sns.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {})
        # The scope needs its policy in place first, so the policy goes before it.
        for key in sorted(attributes, key=lambda k: k == "FilterPolicyScope"):
            if current.get(key) != attributes[key]:
                self.sns.set_subscription_attributes(
                    SubscriptionArn=arn, AttributeName=key, AttributeValue=attributes[key]
                )

    def _secret(self, logical_id: str, raw: dict[str, Any]) -> tuple[str, dict[str, str]]:
        props = self.resolve(raw)
        name = self._physical_name(logical_id, props.get("Name"))
        template_value: str | None = None
        if "SecretString" in props:
            template_value = _stringify(props["SecretString"])
        wanted = self.slack_webhook if logical_id in self.webhook_secrets else template_value
        try:
            described = self.secretsmanager.describe_secret(SecretId=name)
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            value = wanted if wanted is not None else template_value
            arn = self._create_secret(logical_id, name, props, value)
        else:
            arn = described["ARN"]
            self._converge_secret(arn, deleted=bool(described.get("DeletedDate")), wanted=wanted)
        return arn, {"Id": arn}

    def _create_secret(self, logical_id: str, name: str, props: Mapping[str, Any], value: str | None) -> str:
        """A new secret; without a value (GenerateSecretString in the template) a random one stands in."""
        if value is None:
            self.note(f"{logical_id}: GenerateSecretString is not reproduced locally; random value used")
            value = secrets.token_urlsafe(32)
        create: dict[str, Any] = {"Name": name, "SecretString": value}
        if "Description" in props:
            create["Description"] = str(props["Description"])
        return self.secretsmanager.create_secret(**create)["ARN"]

    def _converge_secret(self, arn: str, *, deleted: bool, wanted: str | None) -> None:
        """An existing secret is restored if scheduled for deletion, and gets the wanted value if any."""
        if deleted:
            self.secretsmanager.restore_secret(SecretId=arn)
        if wanted is not None:
            current = self.secretsmanager.get_secret_value(SecretId=arn).get("SecretString")
            if current != wanted:
                self.secretsmanager.put_secret_value(SecretId=arn, SecretString=wanted)
