#!/usr/bin/python3
"""Checks the deployment manifests against the rules of docs/deploy.md.

usage: deploy/check-manifests.py [ROOT]   (ROOT: the source tree, default: the
       parent of this script's directory)

Reads ROOT/Dockerfile, ROOT/deploy/postgres/Dockerfile (the catalog
database's image), ROOT/deploy/compose.yaml and every
ROOT/deploy/kubernetes/*.yaml, and checks that
  - every file parses (YAML, multi-document for Kubernetes);
  - every container (init containers and Jobs too) has CPU and memory requests
    and limits, runs as a non-root user, cannot gain privileges, has a
    read-only root file system and drops ALL capabilities;
  - every long-running container has readiness and liveness probes, and its
    gRPC probes, containerPort, EMBEDSEARCH_PORT and Service targetPort are
    one port, the one their image's Dockerfile EXPOSEs; EMBEDSEARCH_METRICS_PORT
    and a prometheus.io/port pod annotation name a containerPort too;
  - every image is embedsearch:<the project VERSION of CMakeLists.txt> (or,
    for the PostgreSQL catalog, embedsearch-postgres:<VERSION>), the same in
    compose and Kubernetes;
  - selectors match pod labels; mounted volumes, claimed PVCs and ConfigMap
    keys read by env exist;
  - in compose: resources, healthchecks on long-running services, a
    non-root user, depends_on targets that exist, declared named volumes.
Prints every violation and exits 1 if there is any, 0 otherwise.
Needs python3-yaml (scripts/install-deps installs it).
"""

import glob
import os
import re
import sys

import yaml

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
JOB_KINDS = {"Job", "CronJob"}
IMAGE_REPOSITORY = "embedsearch"
# The shared catalog's database (deploy/postgres/Dockerfile).
DATABASE_IMAGE_REPOSITORY = "embedsearch-postgres"
DOCKERFILES = {IMAGE_REPOSITORY: "Dockerfile",
               DATABASE_IMAGE_REPOSITORY: os.path.join("deploy", "postgres", "Dockerfile")}


def repository_of(image):
    """"embedsearch" of "registry/embedsearch:0.1.0"."""
    if not isinstance(image, str):
        return None
    return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


class Checker:
    def __init__(self, root):
        self.root = root
        self.errors = []

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    # ---- Dockerfile ---------------------------------------------------------

    def dockerfiles(self):
        """Returns ({repository: exposed ports}, user of the main image)."""
        exposed, user = {}, None
        for repository, rel in DOCKERFILES.items():
            if repository != IMAGE_REPOSITORY and \
                    not os.path.exists(os.path.join(self.root, rel)):
                continue  # optional image
            ports, image_user = self.dockerfile(rel)
            exposed[repository] = ports
            if repository == IMAGE_REPOSITORY:
                user = image_user
        return exposed, user

    def dockerfile(self, rel="Dockerfile"):
        """Returns (exposed ports, user) of the final stage of a Dockerfile."""
        path = os.path.join(self.root, rel)
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            self.error(rel, f"cannot read: {e}")
            return set(), None
        text = re.sub(r"\\\n", " ", text)  # join continuation lines
        stages = re.split(r"(?im)^\s*FROM\s", text)
        final = stages[-1]
        ports = set()
        for m in re.finditer(r"(?im)^\s*EXPOSE\s+(.+)$", final):
            for p in m.group(1).split():
                ports.add(int(p.split("/")[0]))
        users = re.findall(r"(?im)^\s*USER\s+(\S+)", final)
        user = users[-1] if users else None
        if not ports:
            self.error(rel, "final stage EXPOSEs no port")
        if user is None or user.split(":")[0] in ("0", "root"):
            self.error(rel, f"final stage runs as root (USER {user})")
        if not re.search(r"(?im)^\s*HEALTHCHECK\s+.*CMD", final):
            self.error(rel, "final stage has no HEALTHCHECK")
        return ports, user

    # ---- helpers --------------------------------------------------------------

    def load_yaml(self, path, multi):
        rel = os.path.relpath(path, self.root)
        try:
            with open(path) as f:
                docs = list(yaml.safe_load_all(f)) if multi else [yaml.safe_load(f)]
        except (OSError, yaml.YAMLError) as e:
            self.error(rel, f"does not parse: {e}")
            return rel, []
        docs = [d for d in docs if d is not None]
        for d in docs:
            if not isinstance(d, dict):
                self.error(rel, "a document is not a mapping")
        return rel, [d for d in docs if isinstance(d, dict)]

    def check_image(self, where, image, images):
        if not isinstance(image, str) or not image:
            self.error(where, "no image")
            return
        repository = repository_of(image)
        if repository not in DOCKERFILES:
            self.error(where, f"image {image!r} is not the {IMAGE_REPOSITORY} image")
        images.add(image)

    # ---- Kubernetes ----------------------------------------------------------

    @staticmethod
    def pod_template(doc):
        kind = doc.get("kind")
        spec = doc.get("spec") or {}
        if kind in WORKLOAD_KINDS or kind == "Job":
            return (spec.get("template") or {})
        if kind == "CronJob":
            return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        return None

    def check_security(self, where, pod_sc, sc):
        def effective(key):
            if key in sc:
                return sc[key]
            return pod_sc.get(key)

        if effective("runAsNonRoot") is not True:
            self.error(where, "securityContext.runAsNonRoot is not true")
        if effective("runAsUser") in (0, None):
            self.error(where, "runAsUser is missing or 0 (root)")
        if sc.get("allowPrivilegeEscalation") is not False:
            self.error(where, "securityContext.allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            self.error(where, "securityContext.readOnlyRootFilesystem is not true")
        if sc.get("privileged"):
            self.error(where, "container is privileged")
        drop = ((sc.get("capabilities") or {}).get("drop")) or []
        if "ALL" not in drop:
            self.error(where, "securityContext.capabilities.drop lacks ALL")

    def check_resources(self, where, resources):
        resources = resources or {}
        for section in ("requests", "limits"):
            values = resources.get(section) or {}
            for key in ("cpu", "memory"):
                if key not in values:
                    self.error(where, f"resources.{section}.{key} missing")

    @staticmethod
    def env_value(container, name):
        for e in container.get("env") or []:
            if isinstance(e, dict) and e.get("name") == name and "value" in e:
                return e["value"]
        return None

    def check_probe_port(self, where, probe_name, probe, ports_by_name, ports):
        handler = [k for k in ("grpc", "httpGet", "tcpSocket", "exec") if k in probe]
        if not handler:
            self.error(where, f"{probe_name} has no handler")
            return
        if "grpc" in probe:
            port = (probe["grpc"] or {}).get("port")
            if port not in ports:
                self.error(where, f"{probe_name} gRPC port {port} is not a containerPort {sorted(ports)}")
        elif handler[0] in ("httpGet", "tcpSocket"):
            port = (probe[handler[0]] or {}).get("port")
            port = ports_by_name.get(port, port)
            if port not in ports:
                self.error(where, f"{probe_name} port {port} is not a containerPort")

    def check_pod(self, where, kind, template, exposed, images, pvc_names, config_maps,
                  pod_ports):
        spec = template.get("spec") or {}
        pod_sc = spec.get("securityContext") or {}
        long_running = kind in WORKLOAD_KINDS
        volumes = {v.get("name"): v for v in spec.get("volumes") or [] if isinstance(v, dict)}
        for v in volumes.values():
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if claim is not None and claim not in pvc_names:
                self.error(where, f"volume {v.get('name')} claims undefined PVC {claim}")
        containers = spec.get("containers") or []
        if not containers:
            self.error(where, "pod has no containers")
        groups = [("initContainers", spec.get("initContainers") or []), ("containers", containers)]
        for group, items in groups:
            for c in items:
                cw = f"{where} {group[:-1]} {c.get('name')}"
                self.check_image(cw, c.get("image"), images)
                self.check_resources(cw, c.get("resources"))
                self.check_security(cw, pod_sc, c.get("securityContext") or {})
                for e in c.get("env") or []:
                    ref = ((e or {}).get("valueFrom") or {}).get("configMapKeyRef")
                    if ref and (ref.get("name") not in config_maps or
                                ref.get("key") not in config_maps[ref.get("name")]):
                        self.error(cw, f"env {e.get('name')} refers to undefined ConfigMap key "
                                       f"{ref.get('name')}/{ref.get('key')}")
                for m in c.get("volumeMounts") or []:
                    if m.get("name") not in volumes:
                        self.error(cw, f"mounts undefined volume {m.get('name')}")
                if group != "containers" or not long_running:
                    continue
                ports_by_name = {}
                ports = set()
                for p in c.get("ports") or []:
                    ports.add(p.get("containerPort"))
                    if p.get("name"):
                        ports_by_name[p["name"]] = p.get("containerPort")
                if not ports:
                    self.error(cw, "no containerPort")
                image_exposed = exposed.get(repository_of(c.get("image")), set())
                for p in ports:
                    if image_exposed and p not in image_exposed:
                        self.error(cw, f"containerPort {p} is not EXPOSEd by the Dockerfile {sorted(image_exposed)}")
                env_port = self.env_value(c, "EMBEDSEARCH_PORT")
                if env_port is not None and int(env_port) not in ports:
                    self.error(cw, f"EMBEDSEARCH_PORT {env_port} is not a containerPort {sorted(ports)}")
                metrics_port = self.env_value(c, "EMBEDSEARCH_METRICS_PORT")
                if metrics_port and int(metrics_port) not in ports:
                    self.error(cw, f"EMBEDSEARCH_METRICS_PORT {metrics_port} is not a containerPort "
                                   f"{sorted(ports)}")
                for probe_name in ("readinessProbe", "livenessProbe"):
                    probe = c.get(probe_name)
                    if not isinstance(probe, dict):
                        self.error(cw, f"no {probe_name}")
                        continue
                    self.check_probe_port(cw, probe_name, probe, ports_by_name, ports)
                if isinstance(c.get("startupProbe"), dict):
                    self.check_probe_port(cw, "startupProbe", c["startupProbe"], ports_by_name, ports)
                pod_ports.append((ports, ports_by_name))
        scrape_port = ((template.get("metadata") or {}).get("annotations") or {}).get(
            "prometheus.io/port")
        if scrape_port is not None and not any(
                int(scrape_port) in ports for ports, _ in pod_ports):
            self.error(where, f"annotation prometheus.io/port {scrape_port} is not a containerPort")

    def kubernetes(self, exposed):
        files = sorted(glob.glob(os.path.join(self.root, "deploy", "kubernetes", "*.yaml")))
        if not files:
            self.error("deploy/kubernetes", "no manifests")
            return set()
        docs = []
        for path in files:
            rel, file_docs = self.load_yaml(path, multi=True)
            if not file_docs:
                self.error(rel, "no documents")
            for d in file_docs:
                docs.append((rel, d))
        pvc_names = {d.get("metadata", {}).get("name") for _, d in docs
                     if d.get("kind") == "PersistentVolumeClaim"}
        config_maps = {(d.get("metadata") or {}).get("name"): (d.get("data") or {})
                       for _, d in docs if d.get("kind") == "ConfigMap"}
        images = set()
        # (labels of the pod template, [(ports, ports_by_name)]) per workload
        pods = []
        kinds = set()
        for rel, d in docs:
            kind = d.get("kind")
            name = (d.get("metadata") or {}).get("name") or \
                (d.get("metadata") or {}).get("generateName")
            kinds.add(kind)
            where = f"{rel} {kind}/{name}"
            if not d.get("apiVersion") or not kind or not name:
                self.error(where, "needs apiVersion, kind and metadata.name")
            template = self.pod_template(d)
            if template is None:
                continue
            labels = (template.get("metadata") or {}).get("labels") or {}
            if kind in WORKLOAD_KINDS:
                spec = d.get("spec") or {}
                if not isinstance(spec.get("replicas"), int) or spec["replicas"] < 1:
                    self.error(where, "replicas missing or < 1")
                match = ((spec.get("selector") or {}).get("matchLabels")) or {}
                if not match or any(labels.get(k) != v for k, v in match.items()):
                    self.error(where, "selector.matchLabels does not match the pod template labels")
            pod_ports = []
            self.check_pod(where, kind, template, exposed, images, pvc_names, config_maps,
                           pod_ports)
            pods.append((labels, pod_ports))
        for want in ("Deployment", "Service", "Job", "PersistentVolumeClaim"):
            if want not in kinds:
                self.error("deploy/kubernetes", f"no {want}")
        for rel, d in docs:
            if d.get("kind") != "Service":
                continue
            where = f"{rel} Service/{(d.get('metadata') or {}).get('name')}"
            spec = d.get("spec") or {}
            selector = spec.get("selector") or {}
            matched = [p for labels, p in pods
                       if selector and all(labels.get(k) == v for k, v in selector.items())]
            if not matched:
                self.error(where, f"selector {selector} matches no pod template")
                continue
            for sp in spec.get("ports") or []:
                target = sp.get("targetPort", sp.get("port"))
                ok = any(target in ports or target in by_name
                         for pod_ports in matched for ports, by_name in pod_ports)
                if not ok:
                    self.error(where, f"targetPort {target} is no containerPort of the selected pods")
        if len(self.main_images(images)) > 1:
            self.error("deploy/kubernetes", f"containers use different images: {sorted(images)}")
        return images

    # ---- compose -----------------------------------------------------------------

    def compose(self, exposed, dockerfile_user):
        path = os.path.join(self.root, "deploy", "compose.yaml")
        rel, docs = self.load_yaml(path, multi=False)
        if not docs:
            self.error(rel, "empty")
            return set()
        doc = docs[0]
        services = doc.get("services") or {}
        if not services:
            self.error(rel, "no services")
        named_volumes = set((doc.get("volumes") or {}).keys())
        images = set()
        for name, s in services.items():
            where = f"{rel} service {name}"
            if not isinstance(s, dict):
                self.error(where, "not a mapping")
                continue
            self.check_image(where, s.get("image"), images)
            limits = ((s.get("deploy") or {}).get("resources") or {}).get("limits") or {}
            for key in ("cpus", "memory"):
                if key not in limits:
                    self.error(where, f"deploy.resources.limits.{key} missing")
            user = str(s.get("user", dockerfile_user or ""))
            if not user or user.split(":")[0] in ("0", "root"):
                self.error(where, f"runs as root (user {user!r})")
            if s.get("read_only") is not True:
                self.error(where, "read_only is not true")
            if "ALL" not in (s.get("cap_drop") or []):
                self.error(where, "cap_drop lacks ALL")
            if not any(str(o).startswith("no-new-privileges") and not str(o).endswith("false")
                       for o in s.get("security_opt") or []):
                self.error(where, "security_opt lacks no-new-privileges")
            if s.get("privileged"):
                self.error(where, "privileged")
            deps = s.get("depends_on") or {}
            for dep in (deps if isinstance(deps, (dict, list)) else []):
                if dep not in services:
                    self.error(where, f"depends_on undefined service {dep}")
            for v in s.get("volumes") or []:
                source = v.split(":")[0] if isinstance(v, str) else (v or {}).get("source")
                if source and not source.startswith(("/", ".", "$", "~")) and source not in named_volumes:
                    self.error(where, f"volume {source} is not declared under volumes:")
            one_shot = str(s.get("restart", "no")) == "no"
            if one_shot:
                continue
            test = (s.get("healthcheck") or {}).get("test")
            if not test or (s.get("healthcheck") or {}).get("disable"):
                self.error(where, "long-running service without a healthcheck")
            env = s.get("environment") or {}
            if isinstance(env, list):
                env = dict(e.split("=", 1) for e in env if "=" in e)
            env_port = env.get("EMBEDSEARCH_PORT")
            metrics_port = env.get("EMBEDSEARCH_METRICS_PORT")
            container_ports = set()
            for p in s.get("ports") or []:
                text = str(p["target"]) if isinstance(p, dict) else str(p)
                container_ports.add(int(text.split(":")[-1].split("/")[0]))
            if not container_ports:
                self.error(where, "publishes no port")
            image_exposed = exposed.get(repository_of(s.get("image")), set())
            for p in container_ports:
                if image_exposed and p not in image_exposed:
                    self.error(where, f"container port {p} is not EXPOSEd by the Dockerfile {sorted(image_exposed)}")
                known = {int(q) for q in (env_port, metrics_port) if q}
                if env_port is not None and p not in known:
                    self.error(where, f"EMBEDSEARCH_PORT {env_port} differs from container port {p}")
            if metrics_port and int(metrics_port) not in container_ports:
                self.error(where, f"EMBEDSEARCH_METRICS_PORT {metrics_port} is not published")
        if len(self.main_images(images)) > 1:
            self.error(rel, f"services use different images: {sorted(images)}")
        return images

    @staticmethod
    def main_images(images):
        """The embedsearch images among `images` (the database's is apart)."""
        return {i for i in images if repository_of(i) == IMAGE_REPOSITORY}

    def project_version(self):
        try:
            with open(os.path.join(self.root, "CMakeLists.txt")) as f:
                text = f.read()
        except OSError as e:
            self.error("CMakeLists.txt", f"cannot read: {e}")
            return None
        m = re.search(r"project\(\s*embedsearch\s+VERSION\s+([0-9.]+)", text)
        if not m:
            self.error("CMakeLists.txt", "no project(embedsearch VERSION x.y.z)")
            return None
        return m.group(1)

    def run(self):
        exposed, user = self.dockerfiles()
        images = self.kubernetes(exposed) | self.compose(exposed, user)
        version = self.project_version()
        if len(self.main_images(images)) > 1:
            self.error("deploy", f"compose and Kubernetes use different images: {sorted(images)}")
        for image in images:
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if version and tag != version:
                self.error("deploy", f"image {image} is not tagged with the project version {version}")
        return self.errors


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip())
        return 2
    root = argv[1] if len(argv) == 2 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    errors = Checker(root).run()
    for e in errors:
        print(f"check-manifests: {e}", file=sys.stderr)
    if errors:
        print(f"check-manifests: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print("check-manifests: Dockerfile, compose.yaml and deploy/kubernetes/*.yaml OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
