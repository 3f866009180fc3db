import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { installService, type Runner, serviceManager, uninstallService } from "../../src/service/service.js";
import { launchdPlist, type ServiceSpec, systemdUnit } from "../../src/service/units.js";

const SPEC: ServiceSpec = {
  argv: [process.execPath, "/opt/claw bridge/main.js", "serve", "--config", "/home/u/100%/clawbridge.yaml"],
  workingDirectory: "/home/u",
  logFile: "/home/u/Library/Logs/clawbridge.log",
  env: { PATH: "/usr/local/bin:/usr/bin", NOTE: 'a "quoted" & <odd> value' },
};

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

describe("service files", () => {
  test("the systemd unit quotes its command line and passes systemd-analyze verify", (t) => {
    const unit = systemdUnit(SPEC);
    assert.match(
      unit,
      /^ExecStart=".*" "\/opt\/claw bridge\/main.js" "serve" "--config" "\/home\/u\/100%%\/clawbridge.yaml"$/m,
    );
    assert.match(unit, /^Restart=on-failure$/m);
    assert.match(unit, /^WantedBy=default.target$/m);
    assert.match(unit, /^Environment="NOTE=a \\"quoted\\" & <odd> value"$/m);
    if (!has("systemd-analyze")) return t.skip("systemd-analyze is not installed here");
    const dir = mkdtempSync(join(tmpdir(), "cb-unit-"));
    // verify checks that ExecStart's program exists: point it at real files
    const script = join(dir, "main.js");
    writeFileSync(script, "");
    const path = join(dir, "clawbridge.service");
    writeFileSync(path, systemdUnit({ ...SPEC, argv: [process.execPath, script, "serve"] }));
    const r = spawnSync("systemd-analyze", ["verify", path], { encoding: "utf8" });
    const complaints = `${r.stdout}${r.stderr}`
      .split("\n")
      // the sandbox has no running systemd; lines about that are the machine's, not the unit's
      .filter((l) => l.includes("clawbridge.service") && !/Failed to (connect|create)|bus/i.test(l));
    assert.deepEqual(complaints, [], `systemd-analyze verify: ${r.stdout}${r.stderr}`);
  });

  test("the launchd plist is a property list with the command, keep-alive and log paths", (t) => {
    const plist = launchdPlist(SPEC);
    assert.match(plist, /<string>a &quot;quoted&quot; &amp; &lt;odd&gt; value<\/string>/);
    if (!has("python3")) return t.skip("python3 (plistlib) is not installed here");
    const dir = mkdtempSync(join(tmpdir(), "cb-plist-"));
    const path = join(dir, "agent.plist");
    writeFileSync(path, plist);
    const r = spawnSync(
      "python3",
      ["-c", "import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))", path],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    const parsed = JSON.parse(r.stdout);
    assert.equal(parsed.Label, "dev.clawbridge.gateway");
    assert.deepEqual(parsed.ProgramArguments, SPEC.argv);
    assert.equal(parsed.RunAtLoad, true);
    assert.deepEqual(parsed.KeepAlive, { SuccessfulExit: false });
    assert.equal(parsed.StandardErrorPath, SPEC.logFile);
    assert.equal(parsed.EnvironmentVariables.NOTE, SPEC.env.NOTE);
  });

  test("install writes the file and starts the service; uninstall stops it and removes the file", () => {
    const home = mkdtempSync(join(tmpdir(), "cb-home-"));
    const saved = process.env.XDG_CONFIG_HOME;
    delete process.env.XDG_CONFIG_HOME;
    try {
      for (const platform of ["linux", "darwin"] as const) {
        const ran: string[] = [];
        const run: Runner = (c, a) => {
          ran.push(`${c} ${a.join(" ")}`);
          return { status: 0, output: "" };
        };
        const m = serviceManager(platform, home);
        const spec = { ...SPEC, logFile: join(home, "logs", "clawbridge.log") };
        const r = installService(m, spec, run);
        assert.equal(r.ok, true, r.lines.join("\n"));
        assert.ok(existsSync(m.path));
        assert.equal(readFileSync(m.path, "utf8"), m.render(spec));
        if (platform === "linux") {
          assert.equal(m.path, join(home, ".config", "systemd", "user", "clawbridge.service"));
          assert.deepEqual(ran, [
            "systemctl --user daemon-reload",
            "systemctl --user enable --now clawbridge.service",
          ]);
        } else {
          assert.equal(m.path, join(home, "Library", "LaunchAgents", "dev.clawbridge.gateway.plist"));
          assert.match(ran[0]!, /^launchctl bootstrap gui\/\d+ .*dev\.clawbridge\.gateway\.plist$/);
        }
        ran.length = 0;
        uninstallService(m, run);
        assert.equal(existsSync(m.path), false);
        assert.match(
          ran[0]!,
          platform === "linux" ? /disable --now clawbridge.service/ : /launchctl bootout/,
        );
      }
    } finally {
      if (saved !== undefined) process.env.XDG_CONFIG_HOME = saved;
    }
  });

  test("a failing service manager is reported with its own words", () => {
    const home = mkdtempSync(join(tmpdir(), "cb-home-"));
    const m = serviceManager("linux", home);
    const r = installService(m, { ...SPEC, logFile: join(home, "l.log") }, () => ({
      status: 1,
      output: "Failed to connect to bus: No medium found",
    }));
    assert.equal(r.ok, false);
    assert.match(
      r.lines.join("\n"),
      /systemctl --user daemon-reload` failed \(1\): Failed to connect to bus/,
    );
  });
});
