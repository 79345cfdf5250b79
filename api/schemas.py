"""Request and response bodies of the v1 API.

Requests forbid unknown fields and bound every number, so a typo or an absurd value is an
error that names the field instead of a silently ignored input. Quantities are what Kubernetes
takes: strings ("4", "500m", "90Gi", "1e3") or plain numbers (``cpu: 8``, ``memory: 1024``
bytes) on the wire, validated by one function per kind of quantity that answers with a sentence
("must be at most 1Pi", "not a Kubernetes quantity: 'four' ..."), never with validator
internals; inside they are integers in base units.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from quotas.money import parse_credits
from quotas.quantity import QuantityError, cpu_to_milli, memory_to_bytes

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
ANNOTATION_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
"""Single-line text: no NUL and no control characters (descriptions, label keys)."""
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""Free text that may span lines (command, args, env values, annotations): tabs and newlines
are allowed, NUL and the other control characters are not (PostgreSQL and Kubernetes reject
them)."""
IMAGE = r"^[^\s\x00-\x1f\x7f]+$"
TOKEN_ID = r"^[0-9a-f]{1,16}$"
CURSOR = r"^[A-Za-z0-9_-]{1,200}$"
QUANTITY = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[a-zA-Z]{0,2})$"
QUANTITY_MAX_LENGTH = 32
MAX_JOB_CPU_MILLI = 100_000 * 1000
"""Per pod: 100 000 cores, far above any node, far below what int64 millicores can hold."""
MAX_JOB_MEMORY_BYTES = 1 << 50
"""Per pod: 1Pi."""
MAX_QUOTA_CPU_MILLI = 10**9 * 1000
"""A quota: 10^9 cores (10^12 millicores); sums over cohorts stay far below 2^63."""
MAX_QUOTA_MEMORY_BYTES = 1 << 60
"""A quota: 1Ei."""
MAX_RUNTIME_SECONDS = 90 * 86400
MIN_CHECKPOINT_INTERVAL_SECONDS = 60
MAX_CHECKPOINT_INTERVAL_SECONDS = 7 * 86400


def _dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(
            "must be lowercase letters, digits and '-', starting and ending with a letter or digit"
        )
    return value


def _label_value(value: str) -> str:
    if not value or not LABEL_VALUE.match(value):
        raise ValueError(
            "must be a valid Kubernetes label value: letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        )
    return value


def _quantity_value(value: object) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _quantity_error("must be a number or a quantity string such as 4, 500m or 90Gi")
    if isinstance(value, str) and len(value) > QUANTITY_MAX_LENGTH:
        raise _quantity_error(f"must be at most {QUANTITY_MAX_LENGTH} characters")
    return value


def _quantity_text(value: str | int | float) -> str:
    """A quantity as Kubernetes writes it: strings as given, numbers in their shortest form."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bounded(
    convert: Callable[[str | int | float], int],
    maximum: int,
    limit_text: str,
    *,
    allow_zero: bool = False,
) -> Callable[[object], str]:
    def check(value: object) -> str:
        quantity = _quantity_value(value)
        try:
            amount = convert(quantity)
        except QuantityError as error:
            raise _quantity_error(str(error)) from error
        if amount < 0 or (amount == 0 and not allow_zero):
            raise _quantity_error("must be greater than 0")
        if amount > maximum:
            raise _quantity_error(f"must be at most {limit_text}")
        return _quantity_text(quantity)

    return check


def _quantity_error(message: str) -> PydanticCustomError:
    # The message goes in as a context value: user text is never read as a format template.
    return PydanticCustomError("quantity", "{reason}", {"reason": message})


_QUANTITY_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "pattern": QUANTITY, "maxLength": QUANTITY_MAX_LENGTH},
            {"type": "number", "minimum": 0},
        ],
        "description": "a Kubernetes quantity: a number, or a string such as 4, 500m, 90Gi",
    }
)


_cpu = _bounded(cpu_to_milli, MAX_JOB_CPU_MILLI, "100000 (cores)")
_memory = _bounded(memory_to_bytes, MAX_JOB_MEMORY_BYTES, "1Pi")
_quota_cpu = _bounded(cpu_to_milli, MAX_QUOTA_CPU_MILLI, "1000000000 (cores)", allow_zero=True)
_quota_memory = _bounded(memory_to_bytes, MAX_QUOTA_MEMORY_BYTES, "1Ei", allow_zero=True)


TenantName = Annotated[
    str, Field(min_length=1, max_length=56, pattern=DNS_LABEL.pattern), AfterValidator(_dns_label)
]
ObjectName = Annotated[
    str, Field(min_length=1, max_length=63, pattern=DNS_LABEL.pattern), AfterValidator(_dns_label)
]
UserName = Annotated[
    str,
    Field(min_length=1, max_length=63, pattern=LABEL_VALUE.pattern),
    AfterValidator(_label_value),
]
JobName = UserName
CpuQuantity = Annotated[str, PlainValidator(_cpu), _QUANTITY_SCHEMA]
MemoryQuantity = Annotated[str, PlainValidator(_memory), _QUANTITY_SCHEMA]
QuotaCpu = Annotated[str, PlainValidator(_quota_cpu), _QUANTITY_SCHEMA]
QuotaMemory = Annotated[str, PlainValidator(_quota_memory), _QUANTITY_SCHEMA]
Text = Annotated[str, Field(pattern=TEXT)]
Priority = Literal["low", "normal", "high"]
Role = Literal["tenant-admin", "member", "viewer"]
StopPolicy = Literal["open", "hold", "hold_and_drain"]
MAX_USER_LIMIT = 1_000_000


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_validator("*", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# -- cohorts and flavors ----------------------------------------------------------------------


class CohortCreate(Request):
    name: ObjectName
    parent: ObjectName | None = None
    weights_from_allocation: bool = False
    """Its tenants' fair-share weights follow the credits allocated to them this month."""


class CohortPatch(Request):
    parent: ObjectName | None = None
    """``null`` makes the cohort a root; absent leaves the parent as it is."""
    weights_from_allocation: bool | None = None


class CohortOut(Response):
    name: str
    parent: str | None
    created_at: datetime
    weights_from_allocation: bool = False


NodeLabels = dict[
    Annotated[str, Field(min_length=1, max_length=253, pattern=NO_CONTROL)],
    Annotated[
        str,
        Field(max_length=63, pattern=LABEL_VALUE.pattern),
        AfterValidator(lambda v: v and _label_value(v)),
    ],
]


class FlavorCreate(Request):
    name: ObjectName
    node_labels: NodeLabels = Field(default_factory=dict, max_length=32)
    cpu_per_gpu: CpuQuantity = "4"
    memory_per_gpu: MemoryQuantity = "90Gi"
    allow_empty: bool = False
    """Create the flavor even if its labels select no node the scheduler has reported (nodes
    that have not joined yet); its jobs wait with ``NoNodesForFlavor`` until one does."""


class FlavorPatch(Request):
    node_labels: NodeLabels | None = Field(default=None, max_length=32)
    cpu_per_gpu: CpuQuantity | None = None
    memory_per_gpu: MemoryQuantity | None = None
    allow_empty: bool = False
    stop_policy: StopPolicy | None = None
    """``open``; ``hold``: nothing new is admitted on it; ``hold_and_drain``: its running jobs
    are also stopped and requeued."""


class FlavorOut(Response):
    name: str
    node_labels: dict[str, str]
    cpu_per_gpu: str
    memory_per_gpu: str
    created_at: datetime
    stop_policy: str = "open"


# -- quotas -----------------------------------------------------------------------------------

QUOTA_MAX = 10**18


class GpuQuota(Request):
    nominal: int = Field(ge=0, le=1_000_000)
    borrowing_limit: int | None = Field(default=None, ge=0, le=1_000_000)
    lending_limit: int | None = Field(default=None, ge=0, le=1_000_000)


class CpuQuota(Request):
    nominal: QuotaCpu
    borrowing_limit: QuotaCpu | None = None
    lending_limit: QuotaCpu | None = None


class MemoryQuota(Request):
    nominal: QuotaMemory
    borrowing_limit: QuotaMemory | None = None
    lending_limit: QuotaMemory | None = None


class FlavorQuota(Request):
    gpu: GpuQuota
    cpu: CpuQuota | None = None
    memory: MemoryQuota | None = None


class Quota(Request):
    flavors: dict[ObjectName, FlavorQuota] = Field(default_factory=dict, max_length=64)


class LimitsOut(BaseModel):
    nominal: int | str
    borrowing_limit: int | str | None
    lending_limit: int | str | None


class QuotaOut(BaseModel):
    flavors: dict[str, dict[str, LimitsOut]]


# -- tenants ----------------------------------------------------------------------------------


class UserLimitsBody(Request):
    """Per-user limits: tenant defaults (``null``: unlimited) or a user's overrides (``null``:
    the tenant default)."""

    max_gpus: int | None = Field(default=None, ge=0, le=MAX_USER_LIMIT)
    """GPUs the user's admitted and running jobs hold at once."""
    max_running_jobs: int | None = Field(default=None, ge=0, le=MAX_USER_LIMIT)
    max_queued_jobs: int | None = Field(default=None, ge=0, le=MAX_USER_LIMIT)
    """Queued jobs at once; a submission past it is refused with 429."""


class UserLimitsOut(BaseModel):
    max_gpus: int | None
    max_running_jobs: int | None
    max_queued_jobs: int | None


class TenantLimitsOut(BaseModel):
    tenant: str
    defaults: UserLimitsOut
    users: dict[str, UserLimitsOut]
    """Overrides as set (``null`` fields inherit the defaults)."""


class TenantCreate(Request):
    name: TenantName
    kind: Literal["academic", "industry", "government"]
    cohort: ObjectName | None = None
    weight: float = Field(default=1.0, gt=0, le=1000)
    quota: Quota | None = None
    user_limits: UserLimitsBody | None = None
    stop_policy: StopPolicy = "open"


class TenantPatch(Request):
    kind: Literal["academic", "industry", "government"] | None = None
    cohort: ObjectName | None = None
    weight: float | None = Field(default=None, gt=0, le=1000)
    stop_policy: StopPolicy | None = None
    """``open``; ``hold``: nothing new is admitted; ``hold_and_drain``: running jobs are also
    stopped and requeued."""
    user_limits: UserLimitsBody | None = None
    """Replaces the per-user defaults."""


class TenantOut(Response):
    name: str
    kind: str
    cohort: str | None
    weight: float
    namespace: str
    created_at: datetime
    quota: QuotaOut | None = None
    stop_policy: str = "open"
    user_limits: UserLimitsOut | None = None


class UsageOut(BaseModel):
    tenant: str
    flavors: dict[str, dict[str, dict[str, int | str | None]]]


# -- users, members and tokens ----------------------------------------------------------------


class UserCreate(Request):
    name: UserName
    admin: bool = False


class UserPatch(Request):
    admin: bool


class UserOut(Response):
    name: str
    is_admin: bool
    created_at: datetime


class MemberCreate(Request):
    user: UserName
    role: Role


class MemberOut(Response):
    user: str
    tenant: str
    role: str


class TokenCreate(Request):
    description: str = Field(default="", max_length=200, pattern=NO_CONTROL)
    expires_in_seconds: int | None = Field(default=None, ge=60, le=400 * 86400)


class TokenOut(Response):
    id: str
    user: str
    description: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(TokenOut):
    token: str


# -- jobs -------------------------------------------------------------------------------------

EnvName = Annotated[str, Field(min_length=1, max_length=253, pattern=ENV_NAME.pattern)]
AnnotationKey = Annotated[str, Field(min_length=1, max_length=317, pattern=ANNOTATION_KEY.pattern)]


JobId = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL.pattern)]


class DependencyBody(Request):
    job: JobId
    condition: Literal["succeeded", "failed", "finished"] = "succeeded"
    """``succeeded`` (afterok), ``failed`` (afternotok: failed or cancelled), ``finished``
    (afterany)."""


Dependencies = Annotated[list[DependencyBody], Field(max_length=64)]
MAX_ARRAY_TASKS = 1000


class ArraySpec(Request):
    """Submit ``count`` tasks (indices 0..count-1, ``YUSHAN_ARRAY_INDEX`` in their environment)
    sharing one array id; at most ``parallelism`` of them hold resources at once."""

    count: int = Field(ge=1, le=MAX_ARRAY_TASKS)
    parallelism: int | None = Field(default=None, ge=1, le=MAX_ARRAY_TASKS)

    @model_validator(mode="after")
    def _parallelism_within_count(self) -> ArraySpec:
        if self.parallelism is not None and self.parallelism > self.count:
            raise PydanticCustomError(
                "parallelism_above_count",
                "parallelism ({parallelism}) must be at most count ({count})",
                {"parallelism": self.parallelism, "count": self.count},
            )
        return self


class JobCreate(Request):
    tenant: TenantName
    name: JobName
    image: Annotated[str, Field(min_length=1, max_length=512, pattern=IMAGE)]
    command: list[Annotated[Text, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=64
    )
    args: list[Annotated[Text, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=256
    )
    env: dict[EnvName, Annotated[Text, Field(max_length=32768)]] = Field(
        default_factory=dict, max_length=128
    )
    flavor: ObjectName
    gpus: int = Field(ge=1, le=64)
    workers: int = Field(default=1, ge=1, le=512)
    cpu: CpuQuantity | None = None
    memory: MemoryQuantity | None = None
    priority: Priority = "normal"
    max_runtime_seconds: int | None = Field(default=None, ge=1, le=MAX_RUNTIME_SECONDS)
    checkpoint_interval_seconds: int | None = Field(
        default=None, ge=MIN_CHECKPOINT_INTERVAL_SECONDS, le=MAX_CHECKPOINT_INTERVAL_SECONDS
    )
    """The job saves its progress at least this often; preemption then weighs only the work
    since the last checkpoint. Passed to the pods as ``YUSHAN_CHECKPOINT_INTERVAL_SECONDS``."""
    annotations: dict[AnnotationKey, Annotated[Text, Field(max_length=4096)]] = Field(
        default_factory=dict, max_length=64
    )
    depends_on: Dependencies = Field(default_factory=list)
    """The job starts once every dependency is met; one that can never be met fails it."""
    array: ArraySpec | None = None


class JobPatch(Request):
    """Changes to a queued job. The owner may lower its priority and time limit; raising either
    needs the tenant-admin role. ``max_runtime_seconds: null`` removes the limit (a raise)."""

    name: JobName | None = None
    priority: Priority | None = None
    max_runtime_seconds: int | None = Field(default=None, ge=1, le=MAX_RUNTIME_SECONDS)
    depends_on: Dependencies | None = None


class JobOut(Response):
    id: str
    tenant: str
    user: str
    name: str
    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    flavor: str
    gpus: int
    workers: int
    cpu: str
    memory: str
    priority: str
    max_runtime_seconds: int | None
    checkpoint_interval_seconds: int | None
    annotations: dict[str, str]
    status: str
    reason: str
    message: str
    queue_position: int | None
    attempts: int
    exit_code: int | None
    placement: list[str] | None
    created_at: datetime
    admitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    held: bool = False
    depends_on: list[dict[str, str]] = Field(default_factory=list)
    array_id: str | None = None
    array_index: int | None = None
    array_parallelism: int | None = None
    estimated_start: datetime | None = None
    """When the job is projected to start (queued jobs; refreshed after every cycle for the first
    jobs of each tenant, less often when the projection is slow; on demand with
    ``GET /v1/jobs/{id}/estimate``)."""
    estimate_is_bound: bool = False
    """``estimated_start`` is only "at the earliest": jobs without a time limit hold what the
    job needs."""
    cost: str | None = None
    """Credits the job has cost so far, preemption losses credited (``GET /v1/jobs/{id}``)."""
    max_cost: str | None = None
    """``max_runtime_seconds`` at today's price (``null`` without a time limit)."""


class JobEstimateOut(BaseModel):
    job_id: str
    estimated_start: datetime | None
    """``null`` when no start can be projected (held, stopped tenant or flavor, a dependency
    that cannot be met, or beyond the projection's horizon)."""
    estimate_is_bound: bool
    message: str


class ArrayOut(BaseModel):
    array_id: str
    tenant: str
    count: int
    parallelism: int | None
    statuses: dict[str, int]
    """How many tasks are in each status."""
    tasks: list[JobOut]


class JobPageOut(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class JobEventOut(Response):
    at: datetime
    from_status: str | None
    to_status: str
    reason: str
    message: str


class AuditOut(Response):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditPageOut(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


class NodeOut(Response):
    name: str
    flavor: str | None
    gpu_product: str | None
    """The node's ``nvidia.com/gpu.product`` label (GPU feature discovery), if any."""
    labels: dict[str, str]
    gpu_capacity: int
    gpu_allocatable: int
    gpu_allocated: int
    cpu_allocatable: str
    memory_allocatable: str
    ready: bool
    schedulable: bool


class FlavorCapacityOut(BaseModel):
    flavor: str
    nodes: int
    nodes_ready: int
    gpu_capacity: int
    gpu_allocatable: int
    gpu_allocated: int


class ClusterOut(BaseModel):
    flavors: list[FlavorCapacityOut]
    nodes: list[NodeOut]


# -- accounting -------------------------------------------------------------------------------

CREDITS = r"^[-+]?[0-9]{1,13}(\.[0-9]{1,6})?$"


def _credits(value: object) -> int:
    """Credits as a decimal string or a number, in micro-credits (never a float inside)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PydanticCustomError("credits", "{reason}", {"reason": "must be a number of credits"})
    try:
        return parse_credits(value)
    except ValueError as error:
        reason = str(error).partition(": ")[2] or str(error)
        raise PydanticCustomError("credits", "{reason}", {"reason": reason}) from error


def _non_negative_credits(value: object) -> int:
    amount = _credits(value)
    if amount < 0:
        raise PydanticCustomError("credits", "{reason}", {"reason": "must not be negative"})
    return amount


_CREDITS_SCHEMA = WithJsonSchema(
    {
        "anyOf": [{"type": "string", "pattern": CREDITS}, {"type": "number"}],
        "description": 'credits: a decimal string such as "82" or "4.305" (at most 6 '
        "decimals), or a number",
    }
)
CreditsIn = Annotated[int, PlainValidator(_credits), _CREDITS_SCHEMA]
"""Micro-credits inside; credits on the wire."""
PriceIn = Annotated[int, PlainValidator(_non_negative_credits), _CREDITS_SCHEMA]
TenantKind = Literal["academic", "industry", "government"]


class PriceItem(Request):
    flavor: ObjectName
    tenant_kind: TenantKind
    gpu_hour: PriceIn
    """Credits per GPU-hour."""
    cpu_hour: PriceIn = 0
    """Credits per CPU-core-hour."""
    memory_gib_hour: PriceIn = 0
    """Credits per GiB-hour of memory."""


class PriceListIn(Request):
    effective_from: datetime | None = None
    """When these prices take effect (default: now); earlier intervals keep their price."""
    prices: list[PriceItem] = Field(min_length=1, max_length=1000)


class PriceOut(BaseModel):
    flavor: str
    tenant_kind: str
    effective_from: datetime
    gpu_hour: str
    cpu_hour: str
    memory_gib_hour: str


class PriceListOut(BaseModel):
    at: datetime
    prices: list[PriceOut]


class WalletCredit(Request):
    kind: Literal["topup", "adjustment"] = "topup"
    amount: CreditsIn
    """Credits; an adjustment may be negative."""
    note: str = Field(default="", max_length=200, pattern=NO_CONTROL)


class WalletPolicy(Request):
    credit_limit: PriceIn | None = None
    """How far below zero a postpaid (academic, government) tenant may go; 0 for industry."""
    on_exhausted: Literal["finish", "stop"] | None = None
    """When the credit runs out while jobs run: let them finish, or stop them."""
    require_cover: bool | None = None
    """Admit a job only when the available credit covers its maximum cost."""


class MemberBudgetIn(Request):
    budget: PriceIn


class MemberBudgetOut(BaseModel):
    user: str
    budget: str
    spent: str
    remaining: str


class WalletOut(BaseModel):
    tenant: str
    kind: str
    billing: Literal["prepaid", "postpaid"]
    metered: bool
    """False until a platform admin tops the wallet up or sets its policy: usage is ledgered
    but nothing is charged or refused."""
    balance: str
    credit_limit: str
    available: str
    on_exhausted: str
    require_cover: bool
    members: list[MemberBudgetOut]


class WalletTransactionOut(BaseModel):
    id: int
    kind: str
    amount: str
    user: str | None
    at: datetime
    actor: str
    note: str


class WalletTransactionPageOut(BaseModel):
    items: list[WalletTransactionOut]
    next_cursor: str | None


class UsageReportRow(BaseModel):
    tenant: str | None = None
    user: str | None = None
    flavor: str | None = None
    jobs: int
    gpu_hours: float
    gpu_seconds: float
    cpu_seconds: float
    memory_gib_seconds: float
    lost_gpu_seconds: float
    """Run time lost to preemption (credited back)."""
    cost: str
    credited: str
    net: str


class UsageReportOut(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    group_by: list[str]
    rows: list[UsageReportRow]
    total: UsageReportRow


class StatementLineOut(BaseModel):
    job_id: str
    name: str
    user: str
    flavor: str
    gpu_hours: float
    gpu_hour_price: str
    cost: str
    credited: str
    """Credited back for work lost to preemption."""
    net: str


class StatementOut(BaseModel):
    tenant: str
    month: str
    jobs: int
    """Jobs with usage in the month: one line each."""
    lines: list[StatementLineOut]
    gpu_hours: float
    cost: str
    credited: str
    net: str
    wallet_charges: str | None
    """Net of the wallet's charges and refunds in the month; equals ``net`` for a tenant
    metered all month (``null``: the tenant has no wallet)."""


class QueueEntryOut(BaseModel):
    position: int
    tenant_position: int
    job_id: str
    tenant: str
    user: str
    name: str
    gpus: int
    workers: int
    priority: str
    reason: str
    message: str
    factors: dict[str, float]
