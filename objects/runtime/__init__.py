"""The invocation runtime: one handler's run with its context, calls and sends (run), its outcome written in
its transaction (outcome), its journal and state (journal, state), and accepting invocations and completing
what they wait for (submit, timers), which a handler's ctx.send and ctx.timer use too.
"""
