"""``create_app(settings)``: every part of openmwaa built and wired, and the request pipeline, in order."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from anyio.to_thread import run_sync
from sqlalchemy import Engine

from openmwaa.api import environments as environments_api
from openmwaa.api import publish_metrics as publish_metrics_api
from openmwaa.api import restapi as restapi_api
from openmwaa.api import tags as tags_api
from openmwaa.api import tokens as tokens_api
from openmwaa.api.cloudwatch import codec_of, make_cloudwatch_handler
from openmwaa.api.container_credentials import ServeContainerCredentials
from openmwaa.api.dashboard import SERVICE as DASHBOARD_SERVICE
from openmwaa.api.dashboard import ServeDashboard
from openmwaa.api.dashboard import error_response as dashboard_error
from openmwaa.api.execution_api import ForwardExecutionApi
from openmwaa.api.logs import make_logs_handler
from openmwaa.api.sts import StsService, make_sts_handler
from openmwaa.api.worker_pool import make_worker_pool_handler
from openmwaa.auth.authenticator import SigV4Authenticator
from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.dashboard_signin import DashboardSessions, SignInVerifier
from openmwaa.auth.identities import IdentityStore
from openmwaa.auth.sts_sessions import StsSessionStore
from openmwaa.backing import BackingServices
from openmwaa.errors import OpenMwaaError
from openmwaa.logs.retention import LogJanitor, RetentionPolicy
from openmwaa.logs.service import EnvironmentLogs, LogsService
from openmwaa.logs.tokens import TokenSigner
from openmwaa.metrics.cloudwatch import CloudWatchService
from openmwaa.metrics.containers import ContainerSampler
from openmwaa.metrics.endpoint import ServeMetrics
from openmwaa.metrics.recorder import EnvironmentRef, MetricRecorder
from openmwaa.metrics.statsd import StatsdReceiver, statsd_prefix
from openmwaa.pipeline.asgi import MAX_BODY_BYTES, ApiApp
from openmwaa.pipeline.chain import Pipeline
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.finishers import audit_to, log_access
from openmwaa.pipeline.interfaces import ServiceHandler
from openmwaa.pipeline.response import Response
from openmwaa.pipeline.steps import (
    CLOUDWATCH_SERVICE,
    LOGS_SERVICE,
    MWAA_SERVICE,
    S3_SERVICE,
    STS_SERVICE,
    Authenticate,
    Authorize,
    Dispatch,
    ParseInput,
    RouteRequest,
    is_s3_request,
)
from openmwaa.runtime.installer import RuntimeManager
from openmwaa.runtime.isolation import protect_data_dir
from openmwaa.s3.routing import is_upload as is_s3_upload
from openmwaa.s3.service import S3Service, refuse_s3
from openmwaa.s3.store import BucketStore
from openmwaa.s3.xml import error_response as s3_error_response
from openmwaa.s3source.dag_sync import DagSync
from openmwaa.services.authorization import IamAuthorizer, VpcMap, condition_context
from openmwaa.services.celery_queue import CeleryQueues
from openmwaa.services.cli_commands import CliService, SupervisorCliRunner
from openmwaa.services.dashboard import DashboardService, WebLogin
from openmwaa.services.dashboard_data import DagData, SnapshotCache, fetch_dag_data
from openmwaa.services.environments import EnvironmentService
from openmwaa.services.execution_role import ExecutionRoleService
from openmwaa.services.external_source import build_external_source
from openmwaa.services.invoke import RestApiInvoker
from openmwaa.services.throttle import RateLimiter
from openmwaa.services.web_tokens import KEY_LABEL, OLD_KEY_FILE, WebTokenService, derive_key
from openmwaa.services.worker_pool import CeleryPools, WorkerPoolService
from openmwaa.settings import Settings
from openmwaa.store.audit import AuditLog
from openmwaa.store.db import open_engine
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord, EnvironmentRepository
from openmwaa.store.metrics import MetricStore
from openmwaa.supervisor import EnvironmentEvent, Supervisor
from openmwaa.supervisor.backoff import RestartPolicy
from openmwaa.supervisor.event_bus import EventBus
from openmwaa.supervisor.reaper import Reaper
from openmwaa.supervisor.web_scaling import ScalingRules
from openmwaa.supervisor.worker_scaling import WorkerScalingRules
from openmwaa.upstream.client import Http1Client
from openmwaa.upstream.write_gate import WriteGates
from openmwaa.webserver.app import WebDependencies
from openmwaa.webserver.manager import WebServerConfig, WebServerManager
from openmwaa.webserver.sessions import WebSessionStore
from openmwaa.wire.cloudwatch import error_response as cloudwatch_error_response
from openmwaa.wire.error_response import serialize_error
from openmwaa.wire.logs_json import error_response as logs_error_response
from openmwaa.wire.model import MwaaWire
from openmwaa.wire.sts import error_response as sts_error_response
from openmwaa.wire.worker_pool import SIGNING_SERVICE as WORKER_POOL_SERVICE

log = logging.getLogger(__name__)

#: S3 request bodies other than uploads (XML documents) are held in memory, so they are bounded;
#: PutObject and UploadPart bodies are streamed to disk (up to ``s3_max_upload_bytes`` each).
S3_MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass
class Services:
    """The long-lived parts behind the API; the CLI uses the same ones."""

    settings: Settings
    engine: Engine
    repository: EnvironmentRepository
    supervisor: Supervisor
    environments: EnvironmentService
    identities: IdentityStore
    audit: AuditLog
    wire: MwaaWire
    web_tokens: WebTokenService
    webservers: WebServerManager
    #: Shared by InvokeRestApi and the web endpoints: one write at a time per Airflow.
    write_gates: WriteGates
    clock: Callable[[], float]
    #: CloudWatch Logs over the environments' log files, and their retention.
    logs: LogsService
    log_janitor: LogJanitor
    #: S3's buckets (the directories environments read their sources from).
    buckets: BucketStore
    #: The environments' Celery queues, which workers on other machines join.
    celery_pools: CeleryPools
    #: CloudWatch metrics: their store, Airflow's StatsD, and the processes' CPU and memory.
    metrics: MetricRecorder
    statsd: StatsdReceiver
    containers: ContainerSampler
    #: Distributed mode's PostgreSQL and Redis (the ones openmwaa runs itself, if any).
    backing: BackingServices
    #: Ends the environments' processes if this process dies without stopping them.
    reaper: Reaper
    #: External-S3 mode: keeps the environments' DAG folders in step with the external S3.
    dag_sync: DagSync | None = None

    def start(self) -> None:
        self.reaper.start()  # before any environment's process starts
        self.backing.start()
        self.audit.start()
        self.metrics.start()
        self.statsd.start()  # before the environments start: they are told its port
        if self.dag_sync is not None:
            self.dag_sync.start()
        self.environments.resume_all()
        self.log_janitor.start()
        self.containers.start()

    def shutdown(self) -> None:
        self.containers.stop()
        self.log_janitor.stop()
        if self.dag_sync is not None:
            self.dag_sync.stop()
        self.webservers.shutdown()
        self.supervisor.shutdown()
        self.reaper.close()
        self.backing.stop()
        self.audit.stop()
        self.statsd.stop()
        self.metrics.stop()
        self.metrics.store.close()
        self.buckets.close()
        self.engine.dispose()


def build_services(settings: Settings, *, clock: Callable[[], float] = time.time) -> Services:
    protect_data_dir(settings.data_dir, settings.state_database_url, isolate=settings.isolates_environments)
    engine = open_engine(settings.state_database_url)
    box = SecretBox.open(settings.data_dir)
    repository = EnvironmentRepository(engine, cipher=box)
    sealed = repository.seal_plaintext_secrets()
    if sealed:
        log.info("sealed the secrets of %d environment(s) written before they were encrypted", sealed)
    # Every environment in memory from the start: no read by name or ARN waits for the database.
    repository.load_all()
    events = EventBus()
    backing = BackingServices.for_settings(settings)
    reaper = Reaper()
    supervisor = Supervisor(
        runtimes=RuntimeManager(settings.runtime_dir),
        on_event=events.publish,
        start_timeout=settings.environment_start_timeout,
        hang_timeout=settings.hung_component_timeout,
        policy=RestartPolicy(base_delay=settings.restart_base_delay),
        isolate=settings.isolates_environments,
        scaling=ScalingRules(
            up_window=settings.web_scale_up_window, down_window=settings.web_scale_down_window
        ),
        backends=backing.problems,
        worker_scaling=WorkerScalingRules(
            up_window=settings.worker_scale_up_window, down_window=settings.worker_scale_down_window
        ),
        worker_graceful_timeout=settings.worker_graceful_timeout,
        reaper=reaper,
    )
    buckets = BucketStore(settings.buckets_dir)
    recorder = MetricRecorder(
        MetricStore.open(settings.metrics_url),
        retention_seconds=settings.metrics_retention_days * 86400,
        clock=clock,
    )

    def statsd_prefixes() -> dict[str, EnvironmentRef]:
        return {
            statsd_prefix(str(r.secrets["token_secret"])): EnvironmentRef(
                r.key.account_id, r.key.region, r.name
            )
            for r in repository.list_all()
            if r.secrets.get("token_secret")
        }

    statsd = StatsdReceiver(recorder, statsd_prefixes, port=settings.statsd_port, clock=clock)
    external = build_external_source(settings, repository)
    environments = EnvironmentService(
        settings=settings,
        repository=repository,
        supervisor=supervisor,
        clock=clock,
        buckets=buckets,
        statsd_port=lambda: statsd.bound_port,
        source_buckets=external.buckets if external else None,
        backing=backing.urls,
    )
    containers = ContainerSampler(
        recorder,
        lambda: [
            (EnvironmentRef(r.key.account_id, r.key.region, r.name), environments.home(r))
            for r in repository.list_all()
            if r.status not in ("DELETED", "DELETING")
        ],
        interval=settings.metrics_sample_interval,
        clock=clock,
    )
    identities = IdentityStore(
        settings.iam_path,
        account_id=settings.account_id,
        box=box,
        sessions=StsSessionStore(settings.data_dir / "sessions.json", box=box),
    )
    master = box.derive_key(KEY_LABEL)
    # Older versions kept this key in a file of its own: a second master key nothing needs now.
    (settings.data_dir / OLD_KEY_FILE).unlink(missing_ok=True)
    web_tokens = WebTokenService(master, clock=clock)
    write_gates = WriteGates()
    webservers = WebServerManager(
        settings.data_dir,
        WebServerConfig(
            host=settings.web_host,
            port_first=settings.web_port_first,
            port_last=settings.web_port_last,
            tls=settings.web_tls,
            cert_file=settings.web_cert_file,
            key_file=settings.web_key_file,
            public_host=settings.web_public_host,
        ),
        WebDependencies(
            records=repository,
            tokens=web_tokens,
            sessions=WebSessionStore(
                derive_key(master, "session"), ttl=settings.web_session_ttl, clock=clock
            ),
            endpoints=supervisor,
            cli=CliService(
                SupervisorCliRunner(supervisor),
                web_tokens,
                max_concurrent=settings.cli_max_concurrent,
                timeout=settings.cli_timeout,
            ),
            secure_cookies=settings.web_tls,
            clock=clock,
            write_gates=write_gates,
        ),
    )

    def on_event(event: EnvironmentEvent) -> None:
        environments.on_event(event)
        # The web server endpoint follows the environment: up while AVAILABLE, gone with it.
        if event.kind == "available":
            record = repository.get(EnvironmentKey.parse(event.key))
            if record is not None:
                webservers.ensure(record)
        elif event.kind == "deleted":
            webservers.forget(event.key)

    events.subscribe(on_event)
    logs = LogsService(
        list_environments=lambda: [
            environment_logs(environments, r)
            for r in repository.list_all()
            if (r.key.account_id, r.key.region) == (settings.account_id, settings.region)
        ],
        find_environment=lambda name: _find_logs(environments, repository, settings, name),
        signer=TokenSigner(derive_key(master, "logs-tokens")),
        region=settings.region,
        account_id=settings.account_id,
    )
    janitor = LogJanitor(
        lambda: [environments.home(r) / "logs" for r in repository.list_all()],
        RetentionPolicy(
            retention_seconds=settings.log_retention_days * 86400,
            max_bytes=settings.log_max_bytes,
            component_max_bytes=settings.log_component_max_bytes,
        ),
        clock=clock,
    )
    return Services(
        settings=settings,
        engine=engine,
        repository=repository,
        supervisor=supervisor,
        environments=environments,
        identities=identities,
        audit=AuditLog(engine),
        wire=MwaaWire.load(),
        web_tokens=web_tokens,
        webservers=webservers,
        write_gates=write_gates,
        clock=clock,
        logs=logs,
        log_janitor=janitor,
        buckets=buckets,
        celery_pools=CeleryQueues(distributed=settings.distributed),
        metrics=recorder,
        statsd=statsd,
        containers=containers,
        dag_sync=external.dag_sync if external else None,
        backing=backing,
        reaper=reaper,
    )


def environment_logs(environments: EnvironmentService, record: EnvironmentRecord) -> EnvironmentLogs:
    return EnvironmentLogs(
        name=record.name,
        logging_configuration=record.config.get("LoggingConfiguration") or {},
        logs_dir=environments.home(record) / "logs",
        created_at=record.created_at,
    )


def _find_logs(
    environments: EnvironmentService, repository: EnvironmentRepository, settings: Settings, name: str
) -> EnvironmentLogs | None:
    record = repository.get(EnvironmentKey(settings.account_id, settings.region, name))
    return None if record is None else environment_logs(environments, record)


def create_app(settings: Settings, services: Services) -> ApiApp:
    """The API endpoint: MWAA (rest-json) and STS (query) on one port, one pipeline."""
    wire = services.wire
    vpcs = VpcMap(settings.vpc_cidrs)
    authorizer = IamAuthorizer(services.identities.policies_for)
    environments = services.environments

    def conditions(ctx: RequestContext) -> Mapping[str, Any]:
        return _operation_conditions(ctx, vpcs, environments)

    invoker = RestApiInvoker(
        endpoints=services.supervisor,
        environments=services.environments,
        client=Http1Client(write_gates=services.write_gates),
        timeout=settings.rest_api_timeout,
        limiter=RateLimiter(settings.rest_api_rate),
    )
    operations = {
        **environments_api.operations(
            environments,
            account_id=settings.account_id,
            webserver_url=lambda record: services.webservers.hostname(str(record.key)),
        ),
        **tags_api.operations(environments),
        **publish_metrics_api.operations(environments, services.metrics),
        **restapi_api.operations(
            environments,
            invoker,
            authorizer,
            conditions,
            region=settings.region,
            account_id=settings.account_id,
            environment_vpc=settings.environment_vpc_id,
        ),
        **tokens_api.operations(
            environments,
            services.web_tokens,
            services.webservers,
            authorizer,
            conditions,
            region=settings.region,
            account_id=settings.account_id,
        ),
    }
    sts = make_sts_handler(
        StsService(services.identities, services.identities.sessions, account_id=settings.account_id),
        authorizer=authorizer,
        clock=services.clock,
    )

    def mwaa_error(error: OpenMwaaError, ctx: RequestContext) -> Response:
        return Response.from_wire(serialize_error(error, ctx.request_id))

    s3: ServiceHandler = S3Service(
        services.buckets,
        authorizer,
        conditions,
        region=settings.region,
        max_upload_bytes=settings.s3_max_upload_bytes,
    )
    if settings.source_s3_endpoint_url:
        s3 = refuse_s3

    def s3_error(error: OpenMwaaError, ctx: RequestContext) -> Response:
        return Response.from_wire(s3_error_response(error, ctx.request_id, head=ctx.method == "HEAD"))

    def sts_error(error: OpenMwaaError, ctx: RequestContext) -> Response:
        return Response.from_wire(sts_error_response(error, ctx.request_id))

    def logs_error(error: OpenMwaaError, ctx: RequestContext) -> Response:
        return Response.from_wire(logs_error_response(error, ctx.request_id))

    logs = make_logs_handler(services.logs, authorizer=authorizer, conditions=conditions)
    cloudwatch = make_cloudwatch_handler(
        CloudWatchService(
            services.metrics, account_id=settings.account_id, region=settings.region, clock=services.clock
        ),
        authorizer=authorizer,
        conditions=conditions,
    )

    def cloudwatch_error(error: OpenMwaaError, ctx: RequestContext) -> Response:
        return Response.from_wire(cloudwatch_error_response(error, ctx.request_id, codec_of(ctx)))

    execution_roles = ExecutionRoleService(
        services.identities,
        services.identities.sessions,
        account_id=settings.account_id,
        clock=services.clock,
    )

    def find_record(name: str) -> EnvironmentRecord | None:
        return services.repository.get(EnvironmentKey(settings.account_id, settings.region, name))

    worker_pool = make_worker_pool_handler(
        WorkerPoolService(environments, services.celery_pools),
        authorizer=authorizer,
        conditions=conditions,
        region=settings.region,
        account_id=settings.account_id,
    )
    render, observers = _metrics(settings, services)
    pipeline = Pipeline(
        (
            ServeMetrics(render, settings.metrics_token),
            _dashboard(settings, services, authorizer, invoker, vpcs),
            ServeContainerCredentials(execution_roles, find_record),
            ForwardExecutionApi(find_record, services.supervisor, Http1Client()),
            RouteRequest(wire),
            Authenticate(
                SigV4Authenticator(
                    region=settings.region,
                    credentials=services.identities,
                    clock=services.clock,
                    clock_skew=settings.clock_skew,
                )
            ),
            ParseInput(wire),
            Authorize(authorizer, operations, conditions),
            Dispatch(
                wire,
                operations,
                sts,
                {
                    LOGS_SERVICE: logs,
                    S3_SERVICE: s3,
                    WORKER_POOL_SERVICE: worker_pool,
                    CLOUDWATCH_SERVICE: cloudwatch,
                },
            ),
        ),
        serializers={
            MWAA_SERVICE: mwaa_error,
            STS_SERVICE: sts_error,
            LOGS_SERVICE: logs_error,
            S3_SERVICE: s3_error,
            CLOUDWATCH_SERVICE: cloudwatch_error,
            DASHBOARD_SERVICE: dashboard_error,
        },
        default_serializer=mwaa_error,
        finishers=(log_access, audit_to(services.audit), *observers),
    )

    def body_limit(ctx: RequestContext) -> int:
        return S3_MAX_BODY_BYTES if is_s3_request(ctx) else MAX_BODY_BYTES

    def streams_body(ctx: RequestContext) -> bool:
        return is_s3_request(ctx) and is_s3_upload(
            ctx.method,
            ctx.raw_path,
            ctx.raw_query,
            copy_source=ctx.header("x-amz-copy-source") is not None,
            host=ctx.header("host"),
        )

    return ApiApp(pipeline.handle, pipeline.reject, body_limit=body_limit, streams_body=streams_body)


def _dashboard(
    settings: Settings,
    services: Services,
    authorizer: IamAuthorizer,
    invoker: RestApiInvoker,
    vpcs: VpcMap,
) -> ServeDashboard:
    """``/dashboard``: its service over every environment served, read through InvokeRestApi's path."""

    async def fetch(record: EnvironmentRecord) -> DagData:
        return await fetch_dag_data(invoker, record, services.clock())

    def web_servers(key: str) -> int:
        # Looked up when asked (like the metrics' endpoint lookups): a stand-in supervisor in
        # tests that never serve the dashboard need not have it.
        return services.supervisor.web_servers(key)

    service = DashboardService(
        records=services.repository.list_all,
        authorizer=authorizer,
        cache=SnapshotCache(fetch, refresh_interval=settings.dashboard_refresh_interval),
        web_servers=web_servers,
        audit=services.audit,
        clock=services.clock,
        web_login=WebLogin(
            endpoints=services.webservers,
            tokens=services.web_tokens,
            scheme="https" if settings.web_tls else "http",
        ),
        run_blocking=run_sync,
    )

    def conditions(ctx: RequestContext) -> Callable[[Mapping[str, str]], Mapping[str, Any]]:
        def for_tags(tags: Mapping[str, str]) -> Mapping[str, Any]:
            return condition_context(
                vpcs,
                principal=ctx.principal,
                client_ip=ctx.client_ip,
                received_at=ctx.received_at,
                secure_transport=ctx.scheme == "https",
                resource_tags=tags,
            )

        return for_tags

    return ServeDashboard(
        service,
        signin=SignInVerifier(
            region=settings.region,
            credentials=services.identities,
            clock=services.clock,
            clock_skew=settings.clock_skew,
        ),
        sessions=DashboardSessions(ttl=settings.dashboard_session_ttl, clock=services.clock),
        authorizer=authorizer,
        conditions=conditions,
    )


def _metrics(
    settings: Settings, services: Services
) -> tuple[Callable[[], bytes] | None, tuple[Callable[[RequestContext], None], ...]]:
    """The scrape's renderer and the request counter, when the metrics endpoint is on."""
    if not settings.metrics_token:
        return None, ()
    # Imported here: only a server that serves metrics needs prometheus_client.
    from openmwaa.metrics.prometheus import ApiMetrics, EnvironmentState

    metrics = ApiMetrics(
        environments=lambda: [
            EnvironmentState(r.name, r.status, services.supervisor.endpoint(str(r.key)) is not None)
            for r in services.repository.list_all()
        ],
        audit_backlog=lambda: services.audit.backlog,
        audit_lost=lambda: services.audit.lost,
        clock=services.clock,
    )
    return metrics.render, (metrics.observe,)


def _operation_conditions(
    ctx: RequestContext, vpcs: VpcMap, environments: EnvironmentService
) -> Mapping[str, Any]:
    """Condition keys, with the tag keys of the operations that carry tags."""
    params = ctx.params
    resource_tags: Mapping[str, str] | None = None
    request_tags: Mapping[str, str] | None = None
    tag_keys: list[str] | None = None
    if ctx.operation in ("CreateEnvironment", "TagResource"):
        request_tags = params.get("Tags") or {}
        tag_keys = list(request_tags)
    elif ctx.operation == "UntagResource":
        tag_keys = list(params.get("tagKeys") or [])
    arn = params.get("ResourceArn")
    name = params.get("Name")
    try:
        if isinstance(arn, str):
            resource_tags = environments.get_by_arn(arn).tags
        elif isinstance(name, str) and ctx.operation != "CreateEnvironment":
            resource_tags = environments.get(name).tags
    except OpenMwaaError:
        resource_tags = None
    return condition_context(
        vpcs,
        principal=ctx.principal,
        client_ip=ctx.client_ip,
        received_at=ctx.received_at,
        secure_transport=ctx.scheme == "https",
        resource_tags=resource_tags,
        request_tags=request_tags,
        tag_keys=tag_keys,
    )
