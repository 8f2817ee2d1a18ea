"""A real one-node SLURM cluster on localhost for the tests: munged, slurmctld and
slurmd started from a temporary folder, with their own munge key and socket, ports,
state, spool, logs, and a slurm.conf whose node advertises more CPUs than the
machine has (``SlurmdParameters=config_overrides``), so that 5-task jobs fit on 2
cores.  Nothing outside that folder is used or changed: client commands find the
cluster through ``SLURM_CONF`` in the environment given to them (:meth:`Cluster.env`).

``slurm`` is the session fixture (the tests/test_slurm_*.py modules use it): it skips,
naming the packages, when slurm-wlm or munge are not installed; it fails with the
daemons' log tails when the node does not come up; and on teardown it cancels the
jobs, stops the daemons by pid and kills, by pid, any process left that carries
this cluster's ``SLURM_CONF`` (a job step slurmd did not reap).
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.launch import env as launch_env

SBIN = os.pathsep.join(["/usr/sbin", "/sbin", "/usr/local/sbin"])
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("munge", "sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo")
INSTALL = "install slurm-wlm and munge: apt-get install slurm-wlm munge"
#: CPUs the node advertises (the machine may have 2 cores).
NODE_CPUS = 8
#: Job states after which a job never runs again.
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
         "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT"}
#: Variables of an enclosing job or launcher that must not leak into ours.
FOREIGN = re.compile(r"^(SLURM_|SBATCH_|SRUN_|SALLOC_|SQUEUE_|PMI_|PMIX_|HYDRA_|OMPI_COMM_WORLD)")


def find(name):
    return shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + SBIN)


def _die_with_parent():
    """In the child: SIGTERM when the test process dies, even by SIGKILL (Linux)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def missing_programs():
    return [p for p in DAEMONS + CLIENTS if not find(p)]


def free_ports(n):
    """n distinct TCP ports free right now (for slurmctld and slurmd)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tail(path, lines=25):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return f"--- {path}: (none)"
    return f"--- {path} (last {min(lines, len(text))} lines):\n" + "\n".join(text[-lines:])


@dataclass
class Job:
    """One job (or array task) as ``scontrol show job`` reports it."""
    id: str
    state: str
    exit_code: int
    signal: int
    output: Path | None
    fields: dict = field(repr=False, default_factory=dict)

    @property
    def text(self):
        return self.output.read_text(errors="replace") if self.output and self.output.exists() \
            else ""


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.procs = {}                     # daemon name -> Popen
        self.node = socket.gethostname().split(".")[0]     # what slurmd calls itself
        self.logs = [root / f for f in ("munged.out", "slurmctld.log", "slurmctld.out",
                                        "slurmd.log", "slurmd.out")]

    # -- environment and commands ---------------------------------------------------

    def env(self, **extra):
        """launch.env() (PYTHONPATH, this Python's bin dir first in PATH, one BLAS
        thread, Open MPI's root/oversubscribe variables) for this cluster, without
        any variable of an enclosing SLURM job or MPI launcher."""
        e = {k: v for k, v in launch_env().items() if not FOREIGN.match(k)}
        e["SLURM_CONF"] = str(self.conf)
        e["PATH"] = e.get("PATH", "") + os.pathsep + SBIN
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def run(self, *args, timeout=60, check=True, cwd=None, env=None):
        res = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                             timeout=timeout, cwd=cwd, env=env or self.env(),
                             stdin=subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))}: exit code {res.returncode}\n"
                                 f"{res.stdout}{res.stderr}")
        return res

    def sbatch(self, *args, cwd, env=None):
        """Submit (``sbatch --parsable ARGS`` from ``cwd``); the job id."""
        res = self.run("sbatch", "--parsable", *args, cwd=cwd, env=env)
        return res.stdout.strip().split(";")[0]

    def jobs(self, job_id):
        """Every record ``scontrol show job`` has for ``job_id`` (array: one per task)."""
        res = self.run("scontrol", "show", "job", "-o", job_id, check=False)
        out = []
        for line in res.stdout.splitlines():
            fields = dict(m.groups() for m in re.finditer(r"(\w[\w:/]*)=(\S*)", line))
            if "JobId" not in fields:
                continue
            code, _, sig = fields.get("ExitCode", "0:0").partition(":")
            std = fields.get("StdOut")
            out.append(Job(fields["JobId"], fields.get("JobState", "?"), int(code or 0),
                           int(sig or 0), Path(std) if std else None, fields))
        return out

    def wait(self, job_id, timeout, tasks=1):
        """Wait until job ``job_id`` (all ``tasks`` of an array) has ended: its Job
        records.  On timeout: cancel it and fail with its state and output."""
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.jobs(job_id)
            if len(jobs) >= tasks and all(j.state in FINAL for j in jobs):
                return jobs
            if time.monotonic() > deadline:
                self.run("scancel", job_id, check=False)
                raise AssertionError(
                    f"job {job_id} did not end within {timeout} s: "
                    + "; ".join(f"{j.id} {j.state}" for j in jobs) + "\n"
                    + "\n".join(f"--- {j.output}:\n{j.text[-3000:]}" for j in jobs)
                    + "\n" + tail(self.root / "slurmctld.log", 15))
            time.sleep(0.5)

    # -- start and stop ---------------------------------------------------------------

    def _daemon(self, name, *args, env):
        """Start a daemon in the foreground, as our child (its pid is ours to stop)."""
        out = open(self.root / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen(
            [find(name), *map(str, args)], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, cwd=self.root, start_new_session=True,
            preexec_fn=_die_with_parent)
        out.close()

    def _until(self, what, ready, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode} "
                                       f"while waiting for {what}")
            if ready():
                return
            time.sleep(0.25)
        raise RuntimeError(f"no {what} within {timeout} s")

    def start(self):
        r = self.root
        user = getpass.getuser()
        for d in ("state", "spool", "munge"):
            (r / d).mkdir(mode=0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        sock = r / "munge" / "munge.socket"
        daemon_env = self.env()
        try:
            self._daemon("munged", "--foreground", "--force", f"--socket={sock}",
                         f"--key-file={key}", f"--pid-file={r / 'munged.pid'}",
                         f"--log-file={r / 'munged.log'}",
                         f"--seed-file={r / 'munge' / 'munged.seed'}", env=daemon_env)
            self._until("munge socket", sock.exists, 20)
            ctld_port, d_port = free_ports(2)
            self.conf.write_text(f"""\
# One-node test cluster written by tests/support/slurm_cluster.py
ClusterName=distnewton-test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'slurmctld.log'}
SlurmdLogFile={r / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={r / 'plugstack.conf'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
# start a submitted batch job at once (default: up to 3 s later)
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
ReturnToService=2
# finished jobs stay in `scontrol show job` (JobState, ExitCode) for 10 minutes
MinJobAge=600
KillWait=5
InactiveLimit=0
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
            (r / "plugstack.conf").write_text("")
            self._daemon("slurmctld", "-D", "-f", self.conf, env=daemon_env)
            self._until("slurmctld answer", lambda: self.run(
                "scontrol", "ping", check=False, timeout=10).stdout.count("UP") > 0, 30)
            self._daemon("slurmd", "-D", "-f", self.conf, env=daemon_env)
            self._until(f"idle node {self.node} in sinfo", lambda: self.run(
                "sinfo", "-h", "-N", "-o", "%N %t", check=False, timeout=10
            ).stdout.split() == [self.node, "idle"], 60)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            self.stop()
            raise RuntimeError(f"the test SLURM cluster in {r} did not come up: {exc}\n"
                               + "\n".join(tail(p) for p in self.logs)) from None
        return self

    def _ours(self):
        """Pids of processes (job steps, tasks) whose environment names our SLURM_CONF."""
        mark = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def stop(self):
        """Cancel every job, stop the daemons (by pid), then kill stray job processes."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            res = self.run("squeue", "-h", "-o", "%A", check=False, timeout=20)
            ids = sorted(set(res.stdout.split()))
            if ids:
                self.run("scancel", *ids, check=False, timeout=20)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and self.run(
                        "squeue", "-h", "-o", "%A", check=False, timeout=20).stdout.strip():
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        for pid in self._ours():                    # job steps slurmd left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def skip_reason():
    """Why the SLURM tests cannot run here, or None."""
    missing = missing_programs()
    if missing:
        return f"SLURM not available ({', '.join(missing)} not found): {INSTALL}"
    if os.geteuid() != 0:
        return "the test SLURM cluster runs slurmd, which needs root"
    return None


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """The running one-node cluster (a :class:`Cluster`); skips without SLURM."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm")
    root.chmod(0o755)                    # job steps and munge clients reach the socket
    cluster = Cluster(root)
    try:
        cluster.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
