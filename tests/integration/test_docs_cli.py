#!/usr/bin/python3
"""What the operator reads against what the binary does: the man page's
options are the `--help` texts' options (the daemon's, `status`'s,
`doctor`'s, `import`'s) and the other way round; the README's command list
uses only options that exist; the shipped example file and the README's
example files load; every repository path the docs name exists, and every
relative link of a .md file; docs/admin.md lists the /metrics families. A
daemon on loopback only; no privileges.

Environment: VIPPROXY_BIN (the built binary), VIPPROXY_SOURCE_DIR (repo root).
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import testmain  # noqa: E402
import lab as L  # noqa: E402

ROOT = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BIN = os.environ.get("VIPPROXY_BIN", os.path.join(ROOT, "build", "vipproxy"))
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*[a-z]")


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def help_options():
    """Every long option the --help texts name, by command."""
    out = {}
    for cmd in ([], ["status"], ["doctor"], ["import"]):
        r = run(*cmd, "--help")
        if r.returncode != 0:
            raise AssertionError(f"vipproxy {' '.join(cmd)} --help: exit {r.returncode}: {r.stderr}")
        out[" ".join(cmd) or "vipproxy"] = set(OPTION.findall(r.stdout))
    return out


class DocsCli(unittest.TestCase):
    def test_1_man_page_options_are_the_help_options(self):
        man = read("packaging/vipproxy.8").replace("\\-", "-")
        in_man = set(OPTION.findall(man))
        in_help = set().union(*help_options().values())
        self.assertEqual(in_help - in_man, set(), "options --help has and the man page does not")
        self.assertEqual(in_man - in_help, set(), "options the man page has and --help does not")

    def test_2_readme_command_list_options_exist(self):
        readme = read("README.md")
        block = readme.split("Other commands:", 1)[1].split("```", 2)[1]
        opts = help_options()
        checked = 0
        for line in block.splitlines():
            m = re.match(r"build/vipproxy(?: (import|status|doctor)\b)?", line)
            if not m:
                continue
            known = opts[m.group(1) or "vipproxy"]
            command = line.split("#", 1)[0]
            for o in OPTION.findall(command):
                self.assertIn(o, known, f"README: {line.strip()}")
                checked += 1
        self.assertGreater(checked, 5)

    def test_3_shipped_and_readme_examples_load(self):
        r = run("--check-config", os.path.join(ROOT, "packaging/vipproxy.yaml"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        readme = read("README.md")
        whole = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if re.match(r"(node|proxies|vrrp):", b)]
        self.assertGreaterEqual(len(whole), 2, "the README's whole example files")
        with tempfile.TemporaryDirectory() as d:
            for i, text in enumerate(whole):
                p = os.path.join(d, f"readme-{i}.yaml")
                with open(p, "w", encoding="utf-8") as f:
                    f.write(text)
                r = run("--check-config", p)
                self.assertEqual(r.returncode, 0, f"README example {i}:\n{text}\n{r.stdout}{r.stderr}")

    def test_4_paths_the_docs_name_exist(self):
        docs = ["README.md", "packaging/vipproxy.8", "packaging/vipproxy.yaml", "packaging/vipproxy.service"]
        docs += ["docs/" + f for f in sorted(os.listdir(os.path.join(ROOT, "docs"))) if f.endswith(".md")]
        top = "cfg|ctl|daemon|docs|fuzz|health|importer|metrics|packaging|proxy|scripts|tests|vrrp"
        ref = re.compile(r"(?<![\w/.-])((?:%s)/[\w./-]*\w)" % top)
        missing = []
        for doc in docs:
            for m in ref.finditer(read(doc)):
                path = m.group(1)
                # A file of another project (/etc/bacula/scripts/...), a
                # pattern (catalog0N), or a module named without extension.
                if "0N" in path or os.path.exists(os.path.join(ROOT, path)):
                    continue
                if any(os.path.exists(os.path.join(ROOT, path + ext)) for ext in (".cpp", ".h", ".py")):
                    continue
                missing.append(f"{doc}: {path}")
        self.assertEqual(missing, [])

    def test_5_markdown_links_resolve(self):
        """A relative link in a .md file leads to a file of the repository."""
        broken, checked = [], 0
        for top, _, files in os.walk(ROOT):
            rel = os.path.relpath(top, ROOT).split(os.sep)
            if rel[0].startswith("build") or ".git" in rel:
                continue
            for f in files:
                if not f.endswith(".md"):
                    continue
                doc = os.path.join(top, f)
                with open(doc, encoding="utf-8") as fh:
                    text = fh.read()
                for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
                    link = m.group(1)
                    if re.match(r"[a-z]+:", link):
                        continue
                    checked += 1
                    if not os.path.exists(os.path.join(os.path.dirname(doc), link)):
                        broken.append(f"{os.path.relpath(doc, ROOT)}: {link}")
        self.assertGreater(checked, 5)
        self.assertEqual(broken, [])

    def test_6_metrics_families_are_documented(self):
        """docs/admin.md lists every family /metrics exports, and only those.
        The VRRP families come from vrrp/ (a loopback daemon has no VRRP
        instance, and VRRP in this namespace is not allowed)."""
        admin_doc = read("docs/admin.md").split("## What `/metrics` exports", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(r"`((?:proxy|backend|vrrp|admin|log|systemd|reloads|workers)_[a-z_]+)", admin_doc))
        lab = L.Lab("vipproxy-docs")
        try:
            admin = L.free_port()
            y = L.proxy_yaml("pg", L.free_port(), [("b", L.free_port())], [L.free_port()], admin)
            vp = L.Vipproxy(lab, y)
            text = L.wait_until(lambda: vp.metrics(admin), 20, "/metrics")
        finally:
            lab.close()
        exported = {m for m in re.findall(r"(?m)^# TYPE vipproxy_([a-z_]+) ", text)}
        self.assertGreater(len(exported), 20)
        vrrp = set()
        counters = read("vrrp/counters.h").split("#define VIPPROXY_VRRP_DROPS", 1)[0]
        vrrp |= {f"vrrp_{n}_total" for n in re.findall(r"(?m)^\s+X\(([a-z_]+),", counters)}
        vrrp |= {n + ("_total" if n == "vrrp_drops" else "")
                 for n in re.findall(r'"(vrrp_[a-z_]+)"', read("vrrp/service.cpp"))}
        self.assertIn("vrrp_adverts_sent_total", vrrp)
        self.assertEqual(exported | vrrp, documented)


if __name__ == "__main__":
    testmain.main()
