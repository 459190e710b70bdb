"""Online experiments, built from a ProblemSpec: the daily decision asset and the job that applies a
decision (or an operator's start/stop) to the registry. The sensor that ties them together lives
in automation/experiment_sensor.py.

`<problem>/experiment` (daily) joins what the service answered per arm with the labels that have
arrived and runs the sequential test; its materialization is the decision. The registry moves in a
separate, small run (`experiment_<problem>_job`), so a decision is applied once, visibly, and a
failed registry write is retried like any run.
"""


import dagster as dg

from ml_assets.assets.naming import problem_asset_args
from ml_assets.core.datasets import concat_partitions
from ml_assets.core.experiment_report import decision_path, experiment_rows
from ml_assets.core.performance import join_labels
from ml_assets.core.plots import markdown_image, plot_experiment
from ml_assets.core.served import last_answers
from ml_assets.mlflow import experiments
from ml_assets.mlflow.registry import version_url
from ml_assets.mlflow.resource import MlflowResource
from ml_assets.problem.spec import ProblemSpec

GROUP = "deployment"
_WINDOW = {"allow_missing_partitions": True}


def experiment_key(spec: ProblemSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.name, "experiment"])


def build_experiment_asset(spec: ProblemSpec, partitions_def) -> dg.AssetsDefinition:
    e = spec.experiment
    window = dg.TimeWindowPartitionMapping(start_offset=-(e.max_days + spec.monitoring.label_window_days), end_offset=0,
                                           allow_nonexistent_upstream_partitions=True)

    @dg.asset(key=experiment_key(spec), partitions_def=partitions_def, **problem_asset_args(spec, GROUP),
              kinds={"mlflow"}, io_manager_key="json_io_manager",
              ins={"served": dg.AssetIn([spec.name, "served_predictions"], partition_mapping=window, metadata=_WINDOW),
                   "labels": dg.AssetIn(f"validated_{spec.data.labels.name}", partition_mapping=window,
                                        metadata=_WINDOW)},
              description=f"The running experiment's decision as of the day: what the service answered per arm, "
                          f"joined with the labels so far, tested with an always-valid sequential test (alpha "
                          f"{e.alpha}, at least {e.min_samples} labelled rows per arm, at most {e.max_days} days): "
                          "promote, stop or continue, with per-arm losses, their interval and the test's path.")
    def experiment(context: dg.AssetExecutionContext, served: dict, labels: dict,
                   mlflow: MlflowResource) -> dg.Output[dict]:
        record = experiments.current(mlflow.client(), spec.registered_model_name)
        if record is None or not record.running:
            note = "no experiment running" if record is None else f"experiment {record.id} ended: {record.status}"
            return dg.Output({"action": "none", "reason": note}, metadata={"action": "none", "reason": note})
        answered = concat_partitions({day: frame for day, frame in served.items() if len(frame)})
        arrived = concat_partitions({day: frame for day, frame in labels.items() if len(frame)})
        joined = join_labels(last_answers(answered, spec), arrived, spec) if len(answered) and len(arrived) else \
            answered.iloc[0:0]
        rows = experiment_rows(joined, record.id)
        path = decision_path(rows, spec, record.mode, record.started_utc[:10], context.partition_key)
        last = path.iloc[-1]
        decision = {"action": last["action"], "reason": last["reason"], "experiment_id": record.id,
                    "mode": record.mode, "champion_version": record.champion_version,
                    "challenger_version": record.challenger_version, "path": path.to_dict("records")}
        context.log.info(f"experiment {record.id}: {last['action']} ({last['reason']})")
        return dg.Output(decision, metadata={
            "action": last["action"], "reason": last["reason"], "experiment_id": record.id, "mode": record.mode,
            "champion_version": record.champion_version, "challenger_version": record.challenger_version,
            "labelled_rows_champion": int(last["n_champion"]), "labelled_rows_challenger": int(last["n_challenger"]),
            "loss_champion": float(last["champion_loss"]), "loss_challenger": float(last["challenger_loss"]),
            "difference": float(last["difference"]), "interval": f"[{last['lower']:+.4g}, {last['upper']:+.4g}]",
            "statistic": float(last["statistic"]), "boundary": float(last["boundary"]),
            "path": dg.MetadataValue.md(path.drop(columns=["reason"]).round(5).to_markdown(index=False)),
            "plot": dg.MetadataValue.md(markdown_image(plot_experiment(path), "the test over time"))})

    return experiment


class ExperimentAction(dg.Config):
    action: str  # start | stop | promote
    experiment_id: str = ""  # stop/promote: the experiment decided on (a newer one is never touched)
    version: str = ""  # start: the challenger version
    reason: str = "operator"


def build_experiment_job(spec: ProblemSpec, partitions_def: dg.TimeWindowPartitionsDefinition) -> dg.JobDefinition:
    name = spec.registered_model_name

    @dg.op(name=f"apply_{spec.name}_experiment_action", out={},
           description=f"Starts, stops or concludes an experiment of {name} in the registry, once.")
    def apply(context: dg.OpExecutionContext, config: ExperimentAction, mlflow: MlflowResource):
        client, e = mlflow.client(), spec.experiment
        running = experiments.current(client, name)
        target = config.experiment_id or (running.id if running and running.running else "")
        day = partitions_def.get_last_partition_key()  # the events are filed under the newest day
        if config.action == "start":
            started = experiments.start(client, name, config.version, e.mode, e.challenger_share)
            yield _event(spec, day, "start", started.id, config.reason, challenger_version=started.challenger_version)
        elif config.action == "stop":
            if experiments.stop(client, name, target, config.reason) is None:
                context.log.info(f"experiment {target or '-'} is not running: nothing to stop")
                return
            yield _event(spec, day, "stop", target, config.reason)
        elif config.action == "promote":
            move = experiments.conclude_with_promotion(client, name, target, config.reason)
            if move is None:
                context.log.info(f"experiment {target} is not running: already concluded, nothing promoted")
                return
            yield dg.AssetMaterialization(asset_key=[spec.name, "champion"], metadata={
                "action": "promote", "via": f"experiment {target}", "version": move.champion,
                "previous_version": str(move.previous), "reason": config.reason,
                "mlflow_model_version": dg.MetadataValue.url(version_url(name, move.champion))})
            yield _event(spec, day, "promote", target, config.reason, champion_version=move.champion)
        else:
            raise dg.Failure(f"action {config.action!r} is not one of start, stop, promote")

    @dg.job(name=f"experiment_{spec.name}_job", description=f"Start, stop or conclude an experiment of {name}.")
    def experiment_job():
        apply()

    return experiment_job


def _event(spec: ProblemSpec, day: str, action: str, experiment_id: str, reason: str, **extra) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(asset_key=experiment_key(spec), partition=day, metadata={
        "action": action, "experiment_id": experiment_id, "reason": reason, **extra})
