//! The Kubernetes manifests boot (issue #25), as far as a machine without a control plane
//! allows: each overlay rendered by kustomize, its Deployments, ConfigMaps and Secrets played
//! by `podman kube play` on the compose images (`deploy/podman/kube.sh`), against Redis,
//! RabbitMQ and Garage on the services host of the namespace topology. For every overlay,
//! every replica of every Tirage Deployment runs, with the user, read-only root, dropped
//! capabilities and no-new-privileges its manifest asks for, and answers its readiness probe
//! (the manifest's path and port) 200 — the API's and the worker's `/readyz` check Redis,
//! RabbitMQ and S3 through the names and the Secret the manifests give them.
//!
//! Needs root (network namespaces, podman), what `scripts/compose.sh images` needs, and a
//! kubectl (`scripts/validate-deploy.sh` installs one). `kube.sh down` runs at the end, also
//! when the test fails.

// Test code: a failed step panics with its message, which is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tirage_e2e::repo;

const OVERLAYS: [&str; 4] = [
    "base",
    "overlays/dev",
    "overlays/keda",
    "overlays/keda-zero",
];

struct Played {
    run_dir: PathBuf,
}

impl Played {
    fn script(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(repo().join("deploy/podman/kube.sh"));
        cmd.args(args).env("TIRAGE_KUBE_RUN_DIR", &self.run_dir);
        cmd
    }

    /// `kube.sh up OVERLAY`: the containers it runs, as it describes them.
    fn up(&self, overlay: &str) -> Vec<Value> {
        let out = self.script(&["up", overlay]).output().unwrap();
        assert!(
            out.status.success(),
            "deploy/podman/kube.sh up {overlay} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn deployments(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.run_dir.join("play/pods.json")).unwrap();
        serde_json::from_str::<Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Played {
    fn drop(&mut self) {
        match self.script(&["down"]).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("kube.sh down: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_overlay_boots_under_podman_kube_play() {
    let played = Played {
        run_dir: std::env::temp_dir().join(format!("tirage-kube-{}", std::process::id())),
    };
    for overlay in OVERLAYS {
        let started = Instant::now();
        let containers = played.up(overlay);
        for deployment in played.deployments() {
            let name = deployment["deployment"].as_str().unwrap();
            let replicas = deployment["replicas"].as_u64().unwrap();
            for (container, wanted) in deployment["containers"].as_object().unwrap() {
                let running: Vec<&Value> = containers
                    .iter()
                    .filter(|c| {
                        c["pod"]
                            .as_str()
                            .unwrap()
                            .starts_with(&format!("{name}-pod-"))
                            && c["name"]
                                .as_str()
                                .unwrap()
                                .ends_with(&format!("-{container}"))
                    })
                    .collect();
                assert_eq!(
                    running.len() as u64,
                    replicas,
                    "k8s/{overlay}: {name}/{container} should run {replicas} times: {containers:?}"
                );
                for c in running {
                    check_security(overlay, c, &wanted["security"]);
                    if let Some(probe) = wanted["readiness"].as_object() {
                        let url = format!(
                            "http://{}:{}{}",
                            c["address"].as_str().unwrap(),
                            probe["port"],
                            probe["path"].as_str().unwrap()
                        );
                        wait_ready(overlay, &url).await;
                    }
                }
            }
        }
        eprintln!(
            "k8s/{overlay}: every container ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// The runtime podman made matches what the manifest asked.
fn check_security(overlay: &str, container: &Value, wanted: &Value) {
    let what = format!("k8s/{overlay}: {}", container["name"]);
    assert_eq!(container["state"], "running", "{what}: {container}");
    if let Some(user) = wanted["user"].as_str() {
        assert_eq!(container["user"], user, "{what}: runAsUser/runAsGroup");
    }
    if wanted["read_only"] == true {
        assert_eq!(
            container["read_only"], true,
            "{what}: readOnlyRootFilesystem"
        );
    }
    if wanted["drop_all"] == true {
        let dropped = container["cap_drop"].as_str().unwrap();
        let added = container["cap_add"].as_str().unwrap();
        for cap in [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_NET_RAW",
            "CAP_SETUID",
            "CAP_KILL",
        ] {
            assert!(
                dropped.contains(cap),
                "{what}: drop ALL, yet {cap} kept: {dropped}"
            );
        }
        assert_eq!(added, "[]", "{what}: capabilities added");
    }
    if wanted["no_new_privileges"] == true {
        let opts = container["security_opt"].as_str().unwrap();
        assert!(
            opts.contains("no-new-privileges"),
            "{what}: allowPrivilegeEscalation: {opts}"
        );
    }
}

/// The readiness probe answers 200 within 90 s (a replica connects to its dependencies
/// first).
async fn wait_ready(overlay: &str, url: &str) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let last = match http.get(url).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "k8s/{overlay}: {url} not ready within 90 s: {last}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
