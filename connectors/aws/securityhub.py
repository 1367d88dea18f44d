"""AWS Security Hub (boto3): WIA events imported as ASFF findings, workflow updates, findings back as WIA events.

    securityhub://[<region>][?account_id=123456789012][&product_arn=arn:aws:securityhub:...]

Rules, as the Security Hub API reference and partner guide state them:

- BatchImportFindings takes at most 100 findings per request (`MAX_BATCH_FINDINGS`), at most 240 KB
  per finding (`MAX_FINDING_BYTES`; a bigger finding fails alone, dead-lettered with the reason) and
  about 6 MB per request (`MAX_REQUEST_BYTES`). Throttle: 10 TPS per account and Region, burst 30.
- It "must be called by the account that is associated with a finding if you are using the default
  product ARN": `AwsAccountId` must equal the caller's account, and the default product ARN is
  `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`. Without `account_id`
  the sink asks STS GetCallerIdentity (no IAM permission needed) once; a default product ARN of
  another account, or of another Region than the client's, is refused when the sink is built.
  A partner product ARN (`product/<company>/<product>`) may send for other accounts.
- `FailedFindings` entries are per finding: throttling/internal errors are retried by the delivery
  machinery, everything else is dead-lettered with `ErrorCode: ErrorMessage`.
- After creation, Note, UserDefinedFields, VerificationState and Workflow belong to the customer:
  BatchImportFindings ignores them on update; `update_workflow()` uses BatchUpdateFindings (100
  findings per request), as customers and SOAR tools must.
- GetFindings pages with NextToken (MaxResults 1-100); `get_events()` turns findings back into WIA
  events (the ASFF converter), reflecting the customer's workflow status in `data.status`.

Finding Id = the WIA event id, so a re-sent event updates its finding (idempotent).
"""
from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import parse_qs, urlsplit

from wia_security.errors import ConfigError, ConversionError, DeliveryError, ParseError, WiaError
from wia_security.formats import convert
from wia_security.formats import asff as asff_format
from wia_security.reader import Item
from wia_security.timeutil import parse_iso

from ..delivery.batching import Batch, BatchingSink, Outcome
from ..delivery.permission_window import PermissionWindow
from ..delivery.urls import refuse_repeated_keys, seconds
from ..delivery.policy import DeliveryPolicy, parse_retry_after

#: BatchImportFindings: findings per request (API reference; partner guide "up to 100 findings per batch").
MAX_BATCH_FINDINGS = 100
#: BatchImportFindings: "The maximum allowed size for a finding is 240 Kb."
MAX_FINDING_BYTES = 240 * 1024
#: BatchImportFindings: "up to 6 MB per batch" (partner guide).
MAX_REQUEST_BYTES = 6 * 1024 * 1024
#: BatchUpdateFindings: "you can use it to update up to 100 existing findings at a time".
MAX_UPDATE_FINDINGS = 100
#: GetFindings MaxResults range.
MAX_GET_RESULTS = 100
#: seconds to wait for one answer (botocore waits 60 s to connect and 60 s to read; a hung connect
#: should fail fast so the retry goes elsewhere); connecting gets at most CONNECT_TIMEOUT of it
DEFAULT_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
WORKFLOW_STATUSES = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")
#: Fields the customer owns once a finding exists (BatchImportFindings ignores them on update).
CUSTOMER_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow")

#: A whole-request 403 AccessDeniedException (IAM: the caller is "not authorized to perform:
#: securityhub:BatchImportFindings") while the role or its policy is new. IAM is eventually consistent and names
#: no bound ("takes time to become visible from all possible endpoints"; its caching "can add time", IAM user
#: guide, "Changes that I make are not always immediately visible"); HashiCorp's AWS provider waits 2 minutes for
#: it on each role it creates. Retried until this long after the first such 403 with no request accepted since
#: (margin for the caching the guide names); later ones fail at once, so a permission that never comes costs one
#: window. A FailedFindings AccessDeniedException (the account does not match the product) stays permanent.
PERMISSION_PROPAGATION_SECONDS = 5 * 60
#: The IAM action the 403's reason names (granted on the product ARN), and the read-back's.
IMPORT_ACTION = "securityhub:BatchImportFindings"
READ_ACTION = "securityhub:GetFindings"

#: "Security Hub retains an existing finding ... for 90 days after the most recent value of the UpdatedAt
#: field" (user guide, "Creating and updating findings"), then deletes it.
RETENTION_SECONDS = 90 * 86400

log = logging.getLogger("wia_security.connectors")

#: Error codes (whole request or FailedFindings entry) worth retrying.
RETRYABLE_CODES = frozenset({"LimitExceededException", "ThrottlingException", "TooManyRequestsException",
                             "Throttling", "RequestLimitExceeded", "InternalException", "InternalFailure",
                             "InternalServerError", "ServiceUnavailable", "ServiceUnavailableException",
                             "RequestTimeout", "RequestTimeoutException"})
_PRODUCT_ARN = re.compile(r"^arn:(aws[a-z-]*):securityhub:([a-z0-9-]+):(\d{12}|):product/([^/]+)/([^/]+)$")

#: WIA status from a customer's Workflow.Status (alerts; incidents map RESOLVED/SUPPRESSED to closed).
_ALERT_STATUS = {"NEW": "new", "NOTIFIED": "investigating", "RESOLVED": "resolved", "SUPPRESSED": "false_positive"}
_INCIDENT_STATUS = {"NEW": "new", "NOTIFIED": "investigating", "RESOLVED": "closed", "SUPPRESSED": "closed"}


def partition_of(region: str) -> str:
    """The ARN partition of a Region: the core's table, which knows all eight partitions (this one knew five,
    so an eu-isoe- or eusc- Region got `aws` ARNs that Security Hub refuses)."""
    return asff_format.partition_of(region)


def default_product_arn(account_id: str, region: str) -> str:
    return asff_format.default_product_arn(account_id, region, partition_of(region))


def check_product_arn(product_arn: str, *, account_id: str, region: str) -> None:
    """ConfigError when a product ARN cannot work for this account and Region (the documented rules)."""
    m = _PRODUCT_ARN.match(product_arn)
    if not m:
        raise ConfigError(f"not a Security Hub product ARN: {product_arn!r}", key="product_arn")
    partition, arn_region, _, company, product = m.groups()
    if arn_region != region:
        raise ConfigError(f"the product ARN is for Region {arn_region}, the client for {region}: findings are "
                          "imported in the Region of the product ARN", key="product_arn")
    if partition != (home := partition_of(region)):
        raise ConfigError(f"partition {partition} does not match Region {region}, which is in {home}: the product "
                          f"ARN begins arn:{home}:securityhub:{region}:", key="product_arn")
    if product == "default" and company != account_id:
        raise ConfigError(f"the default product of account {company} cannot receive findings from account "
                          f"{account_id}: with the default product ARN the caller's account must be the "
                          "finding's AwsAccountId", key="product_arn")


def _client_error(exc: Exception) -> DeliveryError:
    """A botocore error as a DeliveryError (retryable for throttling, 5xx and network errors)."""
    from botocore.exceptions import (BotoCoreError, ClientError, ConnectionClosedError, ConnectTimeoutError,
                                     EndpointConnectionError, HTTPClientError, IncompleteReadError,
                                     ReadTimeoutError)
    from botocore.exceptions import ConnectionError as BotoConnectionError
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        metadata = exc.response.get("ResponseMetadata", {})
        status = metadata.get("HTTPStatusCode")
        headers = metadata.get("HTTPHeaders") or {}
        retryable = code in RETRYABLE_CODES or (isinstance(status, int) and status >= 500) or status == 429
        message = error.get("Message", "")
        if isinstance(status, int) and 300 <= status < 400:
            # botocore does not follow it, and neither do we: an endpoint override or proxy pointing wrong
            message = f"redirect to {headers.get('location') or '(no Location)'}; set the endpoint that answers"
        elif not message and code == str(status):
            message = "the answer is not an AWS error document (a proxy page?)"
        return DeliveryError(f"Security Hub {code}: {message}", retryable=retryable, status=status,
                             retry_after=parse_retry_after(headers.get("retry-after")) if retryable else None,
                             details={"code": code})
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError,
                        HTTPClientError, BotoConnectionError, IncompleteReadError)):
        # HTTPClientError covers a reply cut mid-body (ResponseStreamingError) and proxy errors
        return DeliveryError(f"network error: {type(exc).__name__}: {exc}", retryable=True)
    if isinstance(exc, BotoCoreError):
        text = str(exc)
        if "SSL" in text and "CERTIFICATE" in text.upper():
            return DeliveryError(f"TLS verification failed: {text}", retryable=False)
        return DeliveryError(f"boto3: {type(exc).__name__}: {text}", retryable=False)
    raise exc


def make_client(service: str, region: str | None = None, *, max_attempts: int = 1, **config: Any) -> Any:
    """A boto3 client; by default with the SDK's own retries off (the delivery machinery counts attempts
    for sinks). Clients that are not sinks (S3 reads, secrets) pass `max_attempts` for the SDK's
    standard retry mode. `max_attempts` counts every try, the first included: botocore's own
    `max_attempts` key counts retries only (1 would be two tries), hence `total_max_attempts`.

    The credentials that sign each request are masked in log records (wia_security.redact): at DEBUG,
    botocore logs the canonical request and the headers it sends, the session token among them."""
    import boto3
    from botocore.config import Config
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()           # the session boto3.client() would use
    session = boto3.DEFAULT_SESSION
    client = session.client(service, region_name=region,
                            config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts},
                                          user_agent_extra="wia-security", **config))
    credentials = session.get_credentials()
    if credentials is not None:
        client.meta.events.register("before-sign", _CredentialMasker(credentials))
    return client


class _CredentialMasker:
    """Remembers (wia_security.redact) the secret key and session token about to sign a request, before
    botocore logs anything of it; refreshed credentials (a role's) are remembered as they come."""

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials

    def __call__(self, **_: Any) -> None:
        from wia_security.redact import remember
        frozen = self.credentials.get_frozen_credentials()
        remember(frozen.secret_key)
        remember(frozen.token)


class SecurityHubSink(BatchingSink):
    """WIA events into Security Hub as findings of a product (the account's default one unless told)."""

    max_batch_events = MAX_BATCH_FINDINGS
    max_batch_bytes = MAX_REQUEST_BYTES
    # Batches are counted in the bytes botocore sends: it writes the body with json.dumps' defaults (", " and ": "
    # between members, non-ASCII as \uXXXX escapes, 12 bytes for an emoji), which the payloads are written in too.
    # Counted as compact UTF-8, a batch held at 6 MiB went out bigger (up to 3 times) and was refused whole.
    item_separator = b", "
    body_prefix = b'{"Findings": ['
    body_suffix = b"]}"

    def __init__(self, region: str | None = None, *, account_id: str | None = None, product_arn: str | None = None,
                 client: Any = None, sts_client: Any = None, timeout: float = DEFAULT_TIMEOUT,
                 delivery: DeliveryPolicy | None = None, dead_letter: Any = None, name: str | None = None,
                 **machinery: Any) -> None:
        self.timeout = timeout = seconds(timeout, "timeout", "securityhub")
        limits = {"connect_timeout": min(timeout, CONNECT_TIMEOUT), "read_timeout": timeout}
        self._client = client or make_client("securityhub", region, **limits)
        self.region = region or self._client.meta.region_name
        if not self.region:
            raise ConfigError("no AWS Region: give securityhub://<region> or set AWS_REGION", key="region")
        if account_id is None:
            sts = sts_client or make_client("sts", self.region, **limits)
            try:
                account_id = sts.get_caller_identity()["Account"]
            except Exception as exc:  # noqa: BLE001 - no credentials, no network: say so plainly
                if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
                    # account_id would not help: BatchImportFindings needs credentials too
                    raise ConfigError("no AWS credentials found (environment variables, the shared credentials "
                                      "or config file, a role of the instance or container): configure them; "
                                      f"STS GetCallerIdentity said {type(exc).__name__}",
                                      key="credentials") from None
                raise ConfigError(f"cannot tell the caller's AWS account (STS GetCallerIdentity failed: "
                                  f"{type(exc).__name__}); pass account_id", key="account_id") from None
        if not re.fullmatch(r"\d{12}", account_id):
            raise ConfigError("an AWS account id is 12 digits", key="account_id")
        self.account_id = account_id
        self.product_arn = product_arn or default_product_arn(account_id, self.region)
        check_product_arn(self.product_arn, account_id=account_id, region=self.region)
        super().__init__(name=name or f"securityhub:{self.region}:{account_id}", delivery=delivery,
                         dead_letter=dead_letter, **machinery)
        self._retention_warned = False
        self._import_window = PermissionWindow(PERMISSION_PROPAGATION_SECONDS)     # AccessDeniedException on imports
        self._read_window = PermissionWindow(PERMISSION_PROPAGATION_SECONDS)     # GetFindings: another action, own window

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "SecurityHubSink":
        parts = urlsplit(url)
        refuse_repeated_keys(parts.query, f"securityhub://{parts.netloc}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        policy = {k: query.pop(k) for k in list(query) if k in DeliveryPolicy.keys()}
        delivery = options.pop("delivery", None)
        if policy:
            delivery = DeliveryPolicy.from_mapping(policy, base=delivery, source="securityhub URL")
        for key in ("account_id", "product_arn", "region", "timeout"):
            if key in query and key not in options:
                options[key] = query.pop(key)
        if query:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(query))}", key=sorted(query)[0],
                              source="securityhub URL")
        region = options.pop("region", None) or parts.netloc or None
        return cls(region, delivery=delivery, **options)

    # -- import ----------------------------------------------------------------------------------
    def finding(self, event: dict[str, Any]) -> dict[str, Any]:
        """The ASFF finding this sink imports for `event`."""
        return convert(event, to="asff", account_id=self.account_id, region=self.region,
                       partition=partition_of(self.region), product_arn=self.product_arn)

    def encode(self, event: dict[str, Any]) -> bytes:
        finding = self.finding(event)
        if not self._retention_warned:
            self._warn_if_deleted_soon(finding)
        size = len(json.dumps(finding, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if size > MAX_FINDING_BYTES:
            raise ValueError(f"the finding is {size:,} bytes; Security Hub accepts at most 240 KB "
                             f"({MAX_FINDING_BYTES:,} bytes) per finding")
        return json.dumps(finding).encode("ascii")          # as botocore writes it (see item_separator)

    def _warn_if_deleted_soon(self, finding: dict[str, Any]) -> None:
        """Security Hub deletes a finding 90 days after its UpdatedAt (the event's own time, which orders its
        versions): an older event is imported, then deleted, so it is said once per sink, not lost quietly."""
        try:
            age = time.time() - parse_iso(finding["UpdatedAt"]).timestamp()
        except (KeyError, TypeError, ValueError):
            return
        if age > RETENTION_SECONDS:
            self._retention_warned = True
            log.warning("%s: event %s is %d days old (UpdatedAt %s): Security Hub keeps a finding 90 days after "
                        "its UpdatedAt, so it and any other event older than that will be imported and then "
                        "deleted by Security Hub; keep such events in another destination (said once)",
                        self.name, finding.get("Id"), age // 86400, finding["UpdatedAt"])

    def post(self, batch: Batch) -> Sequence[Outcome] | None:
        findings = [json.loads(p) for p in batch.payloads]
        from botocore.exceptions import ParamValidationError
        try:
            return self._import(findings)
        except ParamValidationError:
            # botocore checks the whole request before sending it: one finding it refuses (an event that was
            # never validated, e.g. a negative meta.confidence) failed every finding of the batch. Only the
            # findings botocore refuses fail, each with botocore's words; the others are imported.
            return self._import_valid(findings)

    def _import_valid(self, findings: list[dict[str, Any]]) -> list[Outcome]:
        from botocore.validate import ParamValidator
        shape = self._client.meta.service_model.operation_model("BatchImportFindings").input_shape
        validator = ParamValidator()
        refused: dict[int, str] = {}
        for i, finding in enumerate(findings):
            report = validator.validate({"Findings": [finding]}, shape)
            if report.has_errors():
                refused[i] = " ".join(report.generate_report().split()).replace("Findings[0].", "")
        if not refused:     # the request as a whole, not one finding: every finding's outcome
            raise DeliveryError("boto3: botocore refused the BatchImportFindings request as a whole", retryable=False)
        kept = [f for i, f in enumerate(findings) if i not in refused]
        outcomes = iter((self._import(kept) if kept else None) or [Outcome.delivered()] * len(kept))
        return [Outcome.failed(f"botocore refuses the finding (never sent): {refused[i]}") if i in refused
                else next(outcomes) for i in range(len(findings))]

    def _import(self, findings: list[dict[str, Any]]) -> list[Outcome] | None:
        """One BatchImportFindings call: None when every finding was imported, else one Outcome each."""
        from botocore.exceptions import ParamValidationError
        try:
            response = self._client.batch_import_findings(Findings=findings)
        except ParamValidationError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified (unknown ones re-raised)
            error = _client_error(exc)
            raise (self._denied(error) if _access_denied(error) else error) from None
        self._import_window.accepted()
        success, failed = response.get("SuccessCount"), response.get("FailedCount")
        if not _count(success) or not _count(failed):
            # Both are always in Security Hub's answer; without them this is not one (a proxy's 200 page,
            # an empty body). Re-importing is safe: the finding Id is the event id.
            raise DeliveryError("BatchImportFindings answered without SuccessCount/FailedCount; not counted as "
                                "imported", retryable=True)
        entries = response.get("FailedFindings") or []
        if not isinstance(entries, list):
            entries = []
        failures: dict[str, dict[str, Any]] = {}
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("Id"), str):
                failures[entry["Id"]] = entry
        sent = {f["Id"] for f in findings}
        stray = [e for e in entries if not isinstance(e, dict) or e.get("Id") not in sent]
        # An answer that does not add up (failures for ids not sent, counts that disagree with the list or
        # with the request) cannot say which findings were imported: those not named are re-imported.
        doubt = (f"BatchImportFindings answer does not add up (SuccessCount {success}, FailedCount {failed}, "
                 f"{len(entries)} FailedFindings, {len(stray)} of them for ids not sent, {len(findings)} sent)"
                 if stray or failed != len(entries) or success + failed != len(findings) else None)
        if not failures and doubt is None:
            return None
        outcomes = []
        for finding in findings:
            entry = failures.get(finding["Id"])
            if entry is None:
                outcomes.append(Outcome.retry(doubt, details=response.get("FailedFindings")) if doubt
                                else Outcome.delivered())
                continue
            code, message = entry.get("ErrorCode", "Unknown"), entry.get("ErrorMessage", "")
            reason = f"Security Hub FailedFindings {code}: {message}"
            outcomes.append(Outcome.retry(reason, details=entry) if code in RETRYABLE_CODES
                            else Outcome.failed(reason, details=entry))
        return outcomes

    def _denied(self, error: DeliveryError, *, read: bool = False) -> DeliveryError:
        """Security Hub's 403 AccessDeniedException is retried while a new role or policy may still be
        propagating (PERMISSION_PROPAGATION_SECONDS from the first one with no request accepted since), the reason
        naming the action and the product ARN; it used to be dead-lettered at once, so the first events after a
        deployment (the function's role created with it) went to the dead letter. `read`: GetFindings' own window."""
        need = (f"the caller needs {READ_ACTION} in {self.region}" if read
                else f"the caller needs {IMPORT_ACTION} on {self.product_arn}")
        window = self._read_window if read else self._import_window
        return window.refused(error, self._clock(), need=need, grant="an IAM change", status=403,
                              afterwards="grant it, then read again" if read else "grant it, then replay the dead letter",
                              propagation=("IAM changes are eventually consistent, so a new role or policy is waited "
                                           f"for up to {PERMISSION_PROPAGATION_SECONDS // 60} minutes"))

    # -- customer-side updates and reads ---------------------------------------------------------
    def update_workflow(self, event_ids: Iterable[str], status: str, *, note: str | None = None,
                        updated_by: str = "wia-security") -> tuple[list[str], list[dict[str, Any]]]:
        """Set Workflow.Status (NEW, NOTIFIED, RESOLVED, SUPPRESSED) of this product's findings for the given
        event ids with BatchUpdateFindings. Returns (processed ids, unprocessed entries with ErrorCode)."""
        if status not in WORKFLOW_STATUSES:
            raise ConfigError(f"workflow status must be one of {', '.join(WORKFLOW_STATUSES)}", key="status")
        ids = list(event_ids)
        processed: list[str] = []
        unprocessed: list[dict[str, Any]] = []
        for start in range(0, len(ids), MAX_UPDATE_FINDINGS):
            chunk = ids[start:start + MAX_UPDATE_FINDINGS]
            request: dict[str, Any] = {
                "FindingIdentifiers": [{"Id": i, "ProductArn": self.product_arn} for i in chunk],
                "Workflow": {"Status": status}}
            if note:
                request["Note"] = {"Text": note[:512], "UpdatedBy": updated_by[:512]}
            try:
                response = self._client.batch_update_findings(**request)
            except Exception as exc:  # noqa: BLE001
                raise _client_error(exc) from None
            processed += [f["Id"] for f in response.get("ProcessedFindings") or []]
            unprocessed += response.get("UnprocessedFindings") or []
        return processed, unprocessed

    def get_findings(self, filters: dict[str, Any] | None = None, *, own_only: bool = True,
                     page_size: int = MAX_GET_RESULTS) -> Iterator[dict[str, Any]]:
        """Findings (ASFF dicts) matching `filters` (Security Hub's AwsSecurityFindingFilters syntax),
        only this product's unless `own_only=False`, following NextToken."""
        filters = dict(filters or {})
        if own_only:
            filters.setdefault("ProductArn", [{"Value": self.product_arn, "Comparison": "EQUALS"}])
        page_size = max(1, min(MAX_GET_RESULTS, page_size))
        token = None
        page = 0
        while True:
            page += 1
            request: dict[str, Any] = {"Filters": filters, "MaxResults": page_size}
            if token:
                request["NextToken"] = token
            response = self._get_page(request, page)
            findings = response.get("Findings")
            if not isinstance(findings, list):
                # always present (maybe empty) in Security Hub's answer: anything else must not read as "none"
                raise DeliveryError(f"GetFindings page {page} has no Findings list (not Security Hub's answer?)",
                                    retryable=True)
            yield from findings
            next_token = response.get("NextToken")
            if next_token is not None and not isinstance(next_token, str):
                raise DeliveryError(f"GetFindings page {page}: NextToken is a {type(next_token).__name__}, not a string")
            if next_token and next_token == token:
                raise DeliveryError(f"GetFindings page {page} answered the NextToken it was asked with: paging "
                                    "would never end")
            token = next_token
            if not token:
                return

    def _get_page(self, request: dict[str, Any], page: int) -> dict[str, Any]:
        """One GetFindings answer. IAM's 403 is tried again after a backoff within the delivery policy's attempts
        and time while GetFindings' propagation window lasts (the same page again: no finding read twice), as the
        import's 403 is; then the DeliveryError."""
        attempt, started = 0, self._clock()
        while True:
            attempt += 1
            try:
                response = self._client.get_findings(**request)
            except Exception as exc:  # noqa: BLE001
                try:
                    error = _client_error(exc)
                except Exception:  # noqa: BLE001 - botocore could not parse the answer (a string for a finding)
                    error = DeliveryError(f"GetFindings page {page}: the answer is not a readable GetFindings "
                                          f"response ({type(exc).__name__}: {exc})")
                if _access_denied(error):
                    error = self._denied(error, read=True)
                    delay = self.policy.delay(attempt, error.retry_after)
                    budget = self.policy.max_elapsed - (self._clock() - started) if self.policy.max_elapsed else delay
                    if error.retryable and attempt < self.policy.max_attempts and delay <= budget:
                        self._sleep(delay)
                        continue
                raise error from None
            self._read_window.accepted()
            return response

    def items(self, filters: dict[str, Any] | None = None, *, lenient: bool = False, **options: Any) -> Iterator[Item]:
        """Findings as reader Items, numbered from 1 in GetFindings order: the WIA event(s) of each
        (see `get_events`), or an error naming the finding (number, Id) and why, which the Forwarder
        dead-letters with the finding's JSON. `lenient`, as the Forwarder's: an event restored from this
        project's layout may hold null for an absent optional member (an event sent with one, as the
        lenient forward accepts everywhere); strict, that finding is an error Item naming the member."""
        fmt = asff_format.AsffFormat()
        where = f"{self.name}/GetFindings"
        for n, finding in enumerate(self.get_findings(filters, **options), 1):
            try:
                if not isinstance(finding, dict):
                    raise ConversionError("asff", f"a JSON {type(finding).__name__}, not a finding object")
                events = fmt.to_wia(finding, lenient=lenient)
                for event in events:
                    _apply_workflow(event, finding)
            except (WiaError, ValueError, TypeError, KeyError, AttributeError) as exc:
                ident = finding.get("Id") if isinstance(finding, dict) else None
                yield Item(where, n, error=ParseError(f"finding {n}{f' (Id {ident!r})' if ident else ''}: {exc}",
                                                      source=where, line=n), raw=_finding_bytes(finding))
                continue
            for event in events:
                yield Item(where, n, value=event)

    def get_events(self, filters: dict[str, Any] | None = None, *, lenient: bool = False,
                   **options: Any) -> Iterator[dict[str, Any]]:
        """Findings as WIA events; the customer's Workflow.Status (BatchUpdateFindings) wins over the
        status the event was imported with. A finding that is not a readable ASFF document raises
        ParseError naming it (use `items()` to go on past it and dead-letter it); `lenient` as for `items()`."""
        for item in self.items(filters, lenient=lenient, **options):
            if item.error is not None:
                raise item.error
            yield item.value

    def close_transport(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            close()


def _access_denied(error: DeliveryError) -> bool:
    """Whether a whole-request failure is Security Hub's own 403 AccessDeniedException (IAM's refusal), not a
    proxy's 403 page or another 403 (a signature or a key not recognized, which waiting does not mend)."""
    return error.status == 403 and isinstance(error.details, dict) and error.details.get("code") == "AccessDeniedException"


def _finding_bytes(finding: Any) -> bytes:
    try:
        return json.dumps(finding, ensure_ascii=False, default=str).encode("utf-8")
    except (TypeError, ValueError):
        return repr(finding).encode("utf-8")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _apply_workflow(event: dict[str, Any], finding: dict[str, Any]) -> None:
    status = (finding.get("Workflow") or {}).get("Status")
    table = _ALERT_STATUS if event.get("type") == "alert" else _INCIDENT_STATUS if event.get("type") == "incident" else None
    if not status or table is None or not isinstance(event.get("data"), dict) or status not in table:
        return                                   # an unknown status keeps the one the event was imported with
    current = event["data"].get("status")
    imported = (asff_format.ALERT_WORKFLOW if event["type"] == "alert" else asff_format.INCIDENT_WORKFLOW).get(current)
    if imported != status:                       # changed in Security Hub after import
        event["data"]["status"] = table[status]
