"""The one settings object, built once at the entry point.

Sources, highest first: CLI flags, environment variables (``BURNWATCH_*``),
the YAML config file (``--config``), defaults. A bad value stops the job
before it starts with a message that names the setting.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from operators.alerting.webhooks import STANDARD_RETRY_SCHEDULE

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


_SECRET_SECTIONS = {"webhooks", "kafka", "storage_options", "url", "secret", "routing_key",
                    "dimension_key"}


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it."""


def parse_duration(value: Any) -> Any:
    """'90s', '5m', '48h', '7d' -> timedelta; other forms are left to pydantic."""
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    return value


def _money(value: Any) -> Any:
    # A float literal in YAML carries binary noise into money: demand a string or an int.
    if isinstance(value, float):
        raise ValueError("write money as a string, e.g. \"12.50\"")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Money = Annotated[Decimal, BeforeValidator(_money), Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GrantSettings(_Section):
    grant_id: str
    amount: Money
    granted_at: datetime
    expires_at: datetime | None = None


class BudgetSettings(_Section):
    amount: Money
    period: Literal["day", "week", "month"] = "month"


class TenantSettings(_Section):
    budget: BudgetSettings | None = None
    credits: list[GrantSettings] = []


class WebhookSettings(_Section):
    name: str
    url: SecretStr  # Slack and PagerDuty URLs are secrets too
    format: Literal["standard", "slack", "pagerduty"] = "standard"
    secret: SecretStr | None = None
    routing_key: SecretStr | None = None
    timeout: Duration = timedelta(seconds=5)
    # Waits before each retry (Standard Webhooks' schedule: about 27.6 h in all).
    retry_schedule: list[Duration] = Field(
        default_factory=lambda: [timedelta(seconds=s) for s in STANDARD_RETRY_SCHEDULE],
        max_length=100,
    )
    # Replaced by retry_schedule: given, they stop the job with a message saying so.
    max_attempts: None = None
    backoff: None = None
    max_backoff: None = None

    @field_validator("max_attempts", "backoff", "max_backoff", mode="before")
    @classmethod
    def _replaced(cls, v: Any) -> None:
        raise ValueError("replaced by retry_schedule, a list of waits before each retry "
                         "(e.g. [5s, 5m, 30m]); remove this setting")

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("must be greater than zero")
        return v

    @field_validator("retry_schedule")
    @classmethod
    def _waits_not_negative(cls, v: list[timedelta]) -> list[timedelta]:
        if any(w < timedelta(0) for w in v):
            raise ValueError("waits must not be negative")
        return v

    @model_validator(mode="after")
    def _credentials(self) -> WebhookSettings:
        if self.format == "standard" and (
            self.secret is None or not self.secret.get_secret_value().startswith("whsec_")
        ):
            raise ValueError("a standard webhook needs secret: whsec_...")
        if self.format == "pagerduty" and self.routing_key is None:
            raise ValueError("a pagerduty webhook needs routing_key")
        return self


class AnomalySettings(_Section):
    enabled: bool = True
    model: Literal["seasonal_median", "stl"] = "seasonal_median"
    open_at: float = Field(0.7, gt=0, le=1)  # anomaly score that opens an alert
    resolve_below: float = Field(0.4, ge=0, lt=1)  # ... and that resolves it (hysteresis)
    min_impact: Money = Decimal("1.00")  # actual - expected, in money, to alert at all
    cooldown: Duration = timedelta(hours=6)


class AlertSettings(_Section):
    @field_validator("drain_timeout")
    @classmethod
    def _drain_not_negative(cls, v: timedelta) -> timedelta:
        if v < timedelta(0):
            raise ValueError("must not be negative")
        return v


    cooldown: Duration = timedelta(hours=1)
    page_fast_factor: float = Field(14.4, gt=0)  # 1 h, confirmed by 5 min
    page_slow_factor: float = Field(6.0, gt=0)  # 6 h, confirmed by 30 min
    ticket_factor: float = Field(1.0, gt=0)  # 3 d, confirmed by 6 h
    min_cost: Money = Decimal("1.00")  # no burn-rate alert on less spend than this
    # An open burn-rate alert resolves below this share of its factor (hysteresis;
    # never below the sustainable rate).
    resolve_fraction: float = Field(0.5, gt=0, le=1)
    exhaustion_within: Duration = timedelta(hours=24)
    forecast_window: Duration = timedelta(hours=6)
    # replay and run --until-end wait this long at most for queued webhook deliveries.
    drain_timeout: Duration = timedelta(seconds=30)
    anomaly: AnomalySettings = Field(default_factory=AnomalySettings)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BURNWATCH_", frozen=True, extra="forbid")

    out: str = Field("./burnwatch-out", description="Output URL: a folder or s3://bucket/prefix")
    window: timedelta = Field(timedelta(minutes=1), description="Rollup window size")
    allowed_lateness: timedelta = Field(
        timedelta(minutes=5), description="How far the watermark trails the newest event"
    )
    max_lateness: timedelta = Field(
        timedelta(days=7), description="Older than this behind the watermark: dead letter too_late"
    )
    max_clock_skew: timedelta = Field(
        timedelta(minutes=10), description="Further ahead of the wall clock: future_timestamp"
    )
    dedupe_horizon: timedelta = Field(
        timedelta(hours=48), description="How long (in watermark time) an id is remembered"
    )
    # At most 1e15, so that no window sum can overflow (see operators/usage/parse.py).
    max_quantity: float = Field(
        1e12, gt=0, le=1e15,
        description="Larger quantity in one event: dead letter invalid_quantity",
    )
    max_identifier_length: int = Field(
        256, ge=1, le=65_536,
        description="Longer tenant, meter or dimension key/value: dead letter invalid_field",
    )
    # Fixed per store. Shards split evenly over W workers when W divides the count
    # (see operators/usage/shard_keys.py); each shard costs a little per read, so few is faster.
    id_shards: int = Field(4, ge=1, le=4096, description="Dedupe state shards (fixed per store)")
    window_shards: int = Field(4, ge=1, le=4096, description="Window state shards")
    sink_partitions: int = Field(2, ge=1, le=256, description="Writers per dataset")
    rows_per_file: int = Field(200_000, ge=1, description="Rows buffered before a file is written")
    lines_per_batch: int = Field(10_000, ge=1, description="Lines per read when replaying files")
    dedupe_file_keys: int = Field(
        65_536, ge=1, description="A dedupe run of at least this many ids is snapshotted as "
        "a file in the recovery dir, written when made, not inline at every epoch",
    )
    epoch_interval: timedelta = Field(
        timedelta(seconds=10), description="Bytewax snapshot interval"
    )
    max_file_delay: timedelta = Field(
        timedelta(seconds=1),
        description="Always-on mode: longest a buffered row waits before a file is written",
    )
    dead_letter_topic: str | None = Field(
        None, description="Kafka topic for dead letters (default: <topic>.dlq)"
    )
    kafka: dict[str, Any] = Field(
        default_factory=dict,
        description="librdkafka settings passed to the consumer and producer unchanged (SASL/TLS)",
    )
    run_key: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,31}$",
        description="Names this job's output files (default: made with the recovery store); "
        "every process of a cluster must share it",
    )
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus port (0: off)")
    metrics_addr: str = Field("127.0.0.1", description="Prometheus bind address")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for --out (e.g. s3 endpoint_url)"
    )
    provider_name: str = Field(
        "burnwatch", description="FOCUS ProviderName / InvoiceIssuerName of the cost lines"
    )
    tenant_shards: int = Field(8, ge=1, le=4096, description="Burn and alert state shards")
    meters: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Meter definitions: slug, event_type, aggregation, value_property, "
        "group_by, filter, private, max_groups (README \"Meters\")",
    )
    tenant_property: str | None = Field(
        None, description="JSONPath into the event's data that holds the tenant "
        "(default: CloudEvents subject, the flat shape's tenant)",
    )
    max_groups: int = Field(
        1000, ge=1, le=1_000_000,
        description="Dimension tuples per (tenant, meter) and month; the rest go to __other__",
    )
    dimension_key: SecretStr | None = Field(
        None, description="HMAC key of private dimensions (env BURNWATCH_DIMENSION_KEY)"
    )
    pricing: list[dict[str, Any]] = Field(default_factory=list, description="Price catalog")
    tenants: dict[str, TenantSettings] = Field(
        default_factory=dict, description="Budgets and credit grants per tenant"
    )
    webhooks: list[WebhookSettings] = Field(default_factory=list, description="Alert receivers")
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @field_validator("pricing")
    @classmethod
    def _catalog(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from operators.spend.pricing import catalog_from_config

        catalog_from_config(v)  # raises ValueError naming the entry
        return v

    _durations = field_validator(
        "window", "allowed_lateness", "max_lateness", "max_clock_skew",
        "dedupe_horizon", "epoch_interval", "max_file_delay", mode="before",
    )(parse_duration)

    @field_validator("window", "dedupe_horizon", "epoch_interval")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("must be greater than zero")
        return v

    @field_validator("allowed_lateness", "max_lateness", "max_clock_skew")
    @classmethod
    def _not_negative(cls, v: timedelta) -> timedelta:
        if v < timedelta(0):
            raise ValueError("must not be negative")
        return v

    @field_validator("window")
    @classmethod
    def _divides_a_day(cls, v: timedelta) -> timedelta:
        # Epoch-aligned windows only line up with hours and days if they divide a day.
        if timedelta(days=1) % v or v % timedelta(microseconds=1000):
            raise ValueError("must divide a day evenly, to the millisecond (e.g. 1m, 5m, 1h)")
        return v

    @model_validator(mode="after")
    def _meters(self) -> Settings:
        meters = meter_set(self)  # raises ValueError naming meters[i].key
        if meters is not None:
            from operators.usage.meters import ADDITIVE

            for i, entry in enumerate(self.pricing):
                agg = meters.aggregation_of(entry.get("meter"))
                if agg not in ADDITIVE:
                    raise ValueError(
                        f"pricing[{i}].meter: {entry['meter']!r} is a {agg} meter, whose rows "
                        "do not add up over windows; price a sum, count or unique_count meter")
        return self

    @model_validator(mode="after")
    def _lateness_fits_windows(self) -> Settings:
        if self.max_lateness < self.allowed_lateness:
            raise ValueError("max_lateness must be at least allowed_lateness")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings]
        yaml_file = settings_cls.model_config.get("yaml_file")
        if yaml_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


def meter_set(settings: Settings):
    """The meter definitions as the flow uses them; None when there are none."""
    if not settings.meters and settings.tenant_property is None:
        return None
    from operators.usage.fields import RecordLimits
    from operators.usage.meters import meters_from_config

    key = settings.dimension_key.get_secret_value().encode() if settings.dimension_key else None
    return meters_from_config(settings.meters, settings.max_groups, key,
                              RecordLimits(settings.max_quantity, settings.max_identifier_length),
                              settings.tenant_property)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; raise ConfigError naming each bad setting."""
    cls = Settings
    if config_file is not None:
        if not Path(config_file).is_file():
            raise ConfigError(f"--config: no such file: {config_file}")
        _check_yaml(config_file)

        class _FromFile(Settings):
            model_config = SettingsConfigDict(yaml_file=str(config_file))

        cls = _FromFile
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return cls(**given)
    except ValidationError as ex:
        lines = []
        for err in ex.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            line = f"{where}: {err['msg']}"
            # Echo the value only when it is a plain one and cannot be a secret.
            value = err.get("input")
            if isinstance(value, str | int | float) and not _SECRET_SECTIONS & {
                str(p) for p in err["loc"]
            }:
                line += f" (got {value!r})"
            lines.append(line)
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from ex
    except SettingsError as ex:
        # pydantic-settings names the field only in its message: bad JSON in BURNWATCH_<FIELD>.
        m = re.search(r'field "(\w+)" from source "(\w+)"', str(ex))
        if m and m.group(2) == "EnvSettingsSource":
            raise ConfigError(f"BURNWATCH_{m.group(1).upper()}: not valid JSON") from ex
        raise ConfigError(f"{m.group(1) if m else 'settings'}: {ex}") from ex


def _check_yaml(config_file: Path) -> None:
    """The config file parses as a YAML mapping, or ConfigError says where it does not."""
    try:
        data = yaml.safe_load(Path(config_file).read_text(encoding="utf-8"))
    except yaml.YAMLError as ex:
        mark = getattr(ex, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(ex, "problem", None) or "not valid YAML"
        raise ConfigError(f"--config: YAML syntax error in {config_file}{at}: {problem}") from ex
    except (OSError, UnicodeDecodeError) as ex:
        raise ConfigError(f"--config: cannot read {config_file}: {ex}") from ex
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"--config: {config_file} must be a mapping of settings, "
                          f"not a {type(data).__name__}")
