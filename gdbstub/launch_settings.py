"""How the next program started by the client (gdb's vRun, lldb's A) is set up: environment,
working directory, standard streams, address-space randomization."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class LaunchSettings:
    env_changes: dict[str, str | None] = field(default_factory=dict)
    working_dir: str | None = None
    stdio: dict[int, str] = field(default_factory=dict)
    disable_randomization: bool = True
    # Start programs as `$SHELL -c "exec PROG ARGS"` (gdbserver's default), every argument
    # quoted: the shell expands nothing, as with gdbserver 13.
    startup_with_shell: bool = True

    def set_variable(self, entry: bytes) -> None:
        name, _, value = entry.decode(errors="surrogateescape").partition("=")
        self.env_changes[name] = value

    def unset_variable(self, name: bytes) -> None:
        self.env_changes[name.decode(errors="surrogateescape")] = None

    def reset(self) -> None:
        """QEnvironmentReset: back to the environment the server started with (gdb sends it
        before every run, then the variables the user set or unset)."""
        self.env_changes.clear()

    def environment(self, inherit: bool = True) -> dict[str, str]:
        """The program's environment: ours plus the changes (gdb's QEnvironment* semantics), or
        only what the client sent (lldb sends its whole launch environment)."""
        env = dict(os.environ) if inherit else {}
        for name, value in self.env_changes.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env
