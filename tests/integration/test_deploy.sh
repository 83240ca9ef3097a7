#!/usr/bin/env bash
# deploy/ as an operator gets it: the kustomize base and example overlay
# render offline, every YAML is yamllint-clean, the rendered objects have the
# probes, ports, secret references, grace periods and security settings the
# workers need, their args and INI parse with the real binary, the Dockerfile
# installs through scripts/install-deps.sh whose runtime list covers the
# binary's libraries, and the Grafana dashboard shows every metric.
set -uo pipefail
src=${SL_SOURCE_DIR:?SL_SOURCE_DIR must point at the source tree}
bin=${SL_BIN:-}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit
}

# --- tools: missing ones are failures, not skips ---
if ! command -v kubectl >/dev/null; then
  no "kubectl not found (expected on the machine image at /usr/bin/kubectl): cannot render the manifests"
  finish
fi
if ! command -v yamllint >/dev/null; then
  no "yamllint not found (scripts/install-deps.sh installs it)"
fi
if ! "$py" -c 'import yaml' 2>/dev/null; then
  no "$py has no yaml module (python3-yaml, scripts/install-deps.sh installs it)"
  finish
fi

# --- render ---
for k in base overlays/example; do
  out="$tmp/$(basename "$k").yaml"
  if kubectl kustomize "$src/deploy/k8s/$k" >"$out" 2>"$tmp/err"; then
    ok "kubectl kustomize deploy/k8s/$k renders"
  else
    no "kubectl kustomize deploy/k8s/$k: $(head -c 400 "$tmp/err")"
  fi
done

# --- lint ---
if command -v yamllint >/dev/null; then
  if yamllint -s -c "$src/deploy/.yamllint" "$src/deploy" >"$tmp/lint" 2>&1; then
    ok "yamllint -s is clean on deploy/"
  else
    no "yamllint -s on deploy/: $(head -c 600 "$tmp/lint")"
  fi
fi

# --- the rendered objects ---
# Prints "ok - ..." / "FAIL - ..." lines; writes each Deployment's args and
# INI to $tmp for the binary check below.
check_render() { # name file
  "$py" - "$1" "$2" "$tmp" <<'PY'
import re, sys, yaml
name, path, tmp = sys.argv[1:4]
try:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
except Exception as e:
    print(f"FAIL - {name}: rendered YAML does not parse: {e}")
    sys.exit(0)

def check(cond, what):
    print(("ok - " if cond else "FAIL - ") + f"{name}: {what}")
    return cond

def find(kind, nm=None):
    return [d for d in docs if d.get("kind") == kind and (nm is None or d["metadata"]["name"] == nm)]

def arg_after(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None

def ini_values(text):
    vals, section = {}, ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            continue
        k, _, v = line.partition("=")
        vals[(section, k.strip())] = v.strip()
    return vals

cms = find("ConfigMap")
check(len(cms) == 1 and "streamlearn.ini" in cms[0].get("data", {}), "one ConfigMap holding streamlearn.ini")
ini_text = cms[0]["data"]["streamlearn.ini"] if cms and "streamlearn.ini" in cms[0].get("data", {}) else ""
ini = ini_values(ini_text)
check(not [k for k, v in ini.items() if re.search(r"password|secret|redis", k[1] + "=" + v, re.I)],
      "the INI sets no password, secret or Redis URL")
check(not find("Secret"), "no Secret objects rendered (values stay out of the manifests)")

deps = {}
for role in ("trainer", "predictor"):
    d = find("Deployment", f"streamlearn-{role}")
    if not check(len(d) == 1, f"Deployment streamlearn-{role} exists"):
        continue
    d = d[0]
    deps[role] = d
    pod = d["spec"]["template"]["spec"]
    labels = d["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in d["spec"]["selector"]["matchLabels"].items()),
          f"{role}: selector matches its pod labels")
    c = pod["containers"][0]
    args = c.get("args", [])
    check(args[:1] == ["run"], f"{role}: runs `streamlearn run`")
    check(arg_after(args, "--role") == role, f"{role}: --role {role}")
    port = arg_after(args, "--http-port")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    check(port is not None and port.isdigit() and int(port) in ports.values(),
          f"{role}: container port equals --http-port ({port}, ports {list(ports.values())})")
    for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        p = c.get(probe, {}).get("httpGet", {})
        pp = p.get("port")
        pnum = ports.get(pp, pp)
        check(p.get("path") == want and port is not None and str(pnum) == port,
              f"{role}: {probe} GETs {want} on the HTTP port")
    env = {e["name"]: e for e in c.get("env", [])}
    for var, secret_key in (("STREAMLEARN_REDIS", "url"), ("STREAMLEARN_KAFKA_SASL_USERNAME", "username"),
                            ("STREAMLEARN_KAFKA_SASL_PASSWORD", "password")):
        ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(ref.get("name") and ref.get("key") == secret_key and "value" not in env.get(var, {}),
              f"{role}: {var} comes from a Secret reference")
    literal = [n for n, e in env.items() if "value" in e and re.search(r"PASSWORD|SECRET|REDIS|TOKEN", n)]
    check(not literal, f"{role}: no literal secret values in env ({literal})")
    check(pod.get("terminationGracePeriodSeconds", 30) >= 30 and "terminationGracePeriodSeconds" in pod,
          f"{role}: terminationGracePeriodSeconds >= 30 ({pod.get('terminationGracePeriodSeconds')})")
    check(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{role}: runAsNonRoot")
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
          and sc.get("capabilities", {}).get("drop") == ["ALL"],
          f"{role}: read-only root, no privilege escalation, all capabilities dropped")
    res = c.get("resources", {})
    check(all(k in res.get(s, {}) for s in ("requests", "limits") for k in ("cpu", "memory")),
          f"{role}: cpu and memory requests and limits")
    check(pod.get("enableServiceLinks") is False, f"{role}: enableServiceLinks false (no stray STREAMLEARN_* vars)")
    cfg = arg_after(args, "-c")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cm_vol = [n for n, v in vols.items() if "configMap" in v]
    check(cfg and cm_vol and cms and vols[cm_vol[0]]["configMap"]["name"] == cms[0]["metadata"]["name"]
          and cfg == mounts.get(cm_vol[0], "").rstrip("/") + "/streamlearn.ini",
          f"{role}: -c names streamlearn.ini of the mounted ConfigMap")
    with open(f"{tmp}/{name}-{role}.args", "w") as f:
        f.write("\n".join(args) + "\n")
    with open(f"{tmp}/{name}.ini", "w") as f:
        f.write(ini_text)

if "trainer" in deps:
    check(deps["trainer"]["spec"].get("replicas") == 2, "trainer has 2 replicas (active + standby)")
    check(deps["trainer"]["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 0) >= 60,
          "trainer grace period leaves a minute for the final snapshot")
if len(deps) == 2:
    ga = arg_after(deps["trainer"]["spec"]["template"]["spec"]["containers"][0]["args"], "--group")
    gb = arg_after(deps["predictor"]["spec"]["template"]["spec"]["containers"][0]["args"], "--group")
    check(ga and gb and ga != gb, f"trainer and predictors use different consumer groups ({ga}, {gb})")
    targs = deps["trainer"]["spec"]["template"]["spec"]["containers"][0]["args"]
    pargs_ = deps["predictor"]["spec"]["template"]["spec"]["containers"][0]["args"]
    check(not arg_after(targs, "--output-topic") and not any(k[1] == "output-topic" for k in ini),
          "the trainer produces no predictions (no output topic in its args or the INI)")
    check(bool(arg_after(pargs_, "--output-topic")), "the predictors produce to an output topic")

def selects(sel, role):
    d = deps.get(role)
    if not d:
        return False
    labels = d["spec"]["template"]["metadata"]["labels"]
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())

pdbs = find("PodDisruptionBudget")
check(any(selects(p["spec"]["selector"].get("matchLabels", {}), "trainer")
          and not selects(p["spec"]["selector"].get("matchLabels", {}), "predictor")
          and p["spec"].get("minAvailable") == 1 for p in pdbs),
      "a PodDisruptionBudget keeps one trainer (and selects only trainers)")

svcs = find("Service")
metrics_ok = False
for s in svcs:
    sel = s["spec"].get("selector", {})
    ann = s["metadata"].get("annotations", {})
    sp = s["spec"].get("ports", [])
    if selects(sel, "trainer") and selects(sel, "predictor") and ann.get("prometheus.io/scrape") == "true":
        tp = [p for p in sp if str(p.get("port")) == ann.get("prometheus.io/port")]
        cport = deps["trainer"]["spec"]["template"]["spec"]["containers"][0]["ports"][0]
        metrics_ok = bool(tp) and tp[0].get("targetPort") in (cport.get("name"), cport["containerPort"]) \
            and ann.get("prometheus.io/path") == "/metrics"
check(metrics_ok, "a Service selects trainers and predictors, scrape annotations on the HTTP port's /metrics")

sos = find("ScaledObject")
so_ok = False
for so in sos:
    ref = so["spec"].get("scaleTargetRef", {})
    trig = so["spec"].get("triggers", [])
    pargs = deps.get("predictor", {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("args", [])
    so_ok = (ref.get("name") == "streamlearn-predictor" and ref.get("kind", "Deployment") == "Deployment"
             and len(trig) == 1 and trig[0].get("type") == "kafka"
             and trig[0]["metadata"].get("consumerGroup") == arg_after(pargs, "--group")
             and trig[0]["metadata"].get("topic") == ini.get(("", "input-topic"))
             and trig[0]["metadata"].get("bootstrapServers") == ini.get(("", "brokers")))
check(so_ok, "KEDA ScaledObject scales the predictor Deployment on its group's lag of the input topic")
tas = find("TriggerAuthentication")
check(bool(tas) and all("secretTargetRef" in t["spec"] for t in tas), "KEDA authenticates from a Secret reference")
PY
}
for r in base example; do
  if [ -s "$tmp/$r.yaml" ]; then
    check_render "$r" "$tmp/$r.yaml" >"$tmp/checks" 2>&1
    while IFS= read -r line; do
      case "$line" in
      "ok - "*) ok "${line#ok - }" ;;
      "FAIL - "*) no "${line#FAIL - }" ;;
      *) no "check_render $r: $line" ;;
      esac
    done <"$tmp/checks"
  fi
done

# --- the binary accepts the manifests' args and INI ---
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  no "SL_BIN is not an executable streamlearn binary: cannot check args and INI"
else
  for f in "$tmp"/*-*.args; do
    [ -e "$f" ] || continue
    r=$(basename "$f" .args)
    mapfile -t args <"$f"
    for i in "${!args[@]}"; do
      [ "${args[$i]}" = "-c" ] && args[$((i + 1))]="$tmp/${r%%-*}.ini"
    done
    if env -i PATH="$PATH" "$bin" "${args[@]}" --help >/dev/null 2>"$tmp/err"; then
      ok "$r: streamlearn ${args[*]:0:1} accepts the Deployment's args and INI"
    else
      no "$r: streamlearn rejects the Deployment's args or INI: $(head -c 300 "$tmp/err")"
    fi
  done
fi

# --- Dockerfile ---
df="$src/deploy/Dockerfile"
if grep -Eq '^RUN scripts/install-deps.sh( |$)' "$df" && grep -Eq 'install-deps.sh --runtime' "$df"; then
  ok "Dockerfile installs through scripts/install-deps.sh (build and --runtime)"
else
  no "Dockerfile does not use scripts/install-deps.sh for both stages"
fi
[ "$(grep -c '^FROM debian:bookworm-slim' "$df")" -ge 2 ] && ok "Dockerfile stages are debian:bookworm-slim" ||
  no "Dockerfile stages are not both debian:bookworm-slim"
grep -q '^USER 10001$' "$df" && grep -q -- '--uid 10001' "$df" && ok "image runs as uid 10001" ||
  no "image does not run as uid 10001"
grep -q '^ENTRYPOINT \["/usr/local/bin/streamlearn"\]$' "$df" && ok "entrypoint is the binary" ||
  no "entrypoint is not /usr/local/bin/streamlearn"

# Every library the binary links directly comes from a package of the runtime list.
if [ -n "$bin" ] && [ -x "$bin" ]; then
  runtime=$(bash -c 'source <(sed -n "/^runtime=(/,/)/p" "$1"); echo "${runtime[@]}"' _ "$src/scripts/install-deps.sh")
  # dpkg knows a file by the path its package ships (merged /usr: /lib or /usr/lib).
  owner() {
    local real p
    real=$(readlink -f "$1")
    for p in "$1" "$real" "${real#/usr}" "/usr$1"; do
      dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1 | grep . && return
    done
  }
  missing=""
  while read -r lib; do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|x86_64|64bit/ {print $NF; exit}')
    [ -n "$path" ] || path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
    pkg=$(owner "$path")
    case "$pkg" in
    libc6 | libgcc-s1 | libstdc++6 | libasan* | libubsan*) ;; # in every image, or sanitizer builds only
    *) echo " $runtime " | grep -q " $pkg " || missing="$missing $lib($pkg)" ;;
    esac
  done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  [ -z "$missing" ] && ok "install-deps.sh --runtime covers every library the binary links" ||
    no "runtime list lacks the packages of:$missing"
fi

# --- Grafana ---
"$py" - "$src/deploy/grafana/streamlearn-dashboard.json" >"$tmp/graf" 2>&1 <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"FAIL - dashboard JSON does not parse: {e}")
    sys.exit(0)
exprs = [t.get("expr", "") for p in d.get("panels", []) for t in p.get("targets", [])]
for m in ("streamlearn_samples_trained_total", "streamlearn_predictions_total", "streamlearn_bad_samples_total",
          "streamlearn_model_version", "streamlearn_model_step", "streamlearn_consumer_lag",
          "streamlearn_prequential_loss", "streamlearn_snapshot_seconds", "streamlearn_snapshot_failures_total"):
    hit = [e for e in exprs if m + "{" in e or m + "[" in e or m + ")" in e]
    ok = bool(hit) and all("by (model, role)" in e for e in hit)
    print(("ok - " if ok else "FAIL - ") + f"dashboard plots {m} by model and role")
names = {v.get("name") for v in d.get("templating", {}).get("list", [])}
print(("ok - " if {"model", "role"} <= names else "FAIL - ") + "dashboard filters by model and role")
PY
while IFS= read -r line; do
  case "$line" in
  "ok - "*) ok "${line#ok - }" ;;
  "FAIL - "*) no "${line#FAIL - }" ;;
  *) no "grafana check: $line" ;;
  esac
done <"$tmp/graf"

finish
