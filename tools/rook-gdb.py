# SPDX-License-Identifier: MIT
# gdb commands for rook tasks, on a live process or a core file:
#   source tools/rook-gdb.py
#   rook tasks      id, name, state (call parked in), worker
#   rook bt ID|NAME backtrace of a suspended task's saved stack
# Reads the task pool (sched/task.c's append-only `chunks`) from memory,
# so it needs the library's debug info and writes nothing: a core file
# cannot take register writes, so `rook bt` walks the saved context's
# frame-pointer chain itself (the library is built with frame pointers)
# instead of switching $sp/$pc as folly's script does.
import gdb

GEN_LIVE = 1
T_NEW, T_STARTED, T_DONE = 0, 1, 2
P_PARKED = 2


def _u(v):
    return int(v.cast(gdb.lookup_type("unsigned long")))


def _tasks():
    c = gdb.parse_and_eval("chunks")
    while _u(c):
        for i in range(int(c["c_n"])):
            t = c["c_tasks"][i]
            if int(t["t_gen"]) & GEN_LIVE:
                yield t
        c = c["c_next"]


def _worker_of(t):
    rt = t["t_rt"]
    if not _u(rt):
        return -1
    for i in range(int(rt["rt_nworkers"])):
        if _u(rt["rt_workers"][i]["w_current"]) == _u(t.address):
            return i
    return -1


def _sym(pc):
    b = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
    if b.startswith("No symbol"):
        return "0x%x" % pc
    return b.split(" in section")[0]


def _info(t):
    st = t["t_stack"]
    state, park = int(t["t_state"]), int(t["t_park"])
    tid, name, call = 0, "", None
    if state == T_STARTED and _u(st):
        tid = int(st["s_task_id"])
        name = st["s_diag"]["d_name"].string()
        if _u(st["s_diag"]["d_call"]):
            call = st["s_diag"]["d_call"].string()
    w = _worker_of(t)
    if state == T_NEW:
        s = "not started"
    elif state == T_DONE:
        s = "done, not joined"
    elif w >= 0:
        s = "running"
    elif park == P_PARKED:
        s = "suspended in " + (call or "a rook call")
    else:
        s = "runnable"
    return tid, name, s, w


def _find(key):
    for t in _tasks():
        tid, name = _info(t)[:2]
        if str(tid) == key or name == key:
            return t
    return None


def _saved_pcs(t):
    st = t["t_stack"]
    lo, hi = _u(st["s_lo"]), _u(st["s_top"])
    sp = _u(t["t_sp"])
    inf = gdb.selected_inferior()
    rd = lambda a: int.from_bytes(inf.read_memory(a, 8).tobytes(), "little")
    arch = gdb.selected_frame().architecture().name()
    pci, fpi = (11, 10) if "aarch64" in arch else (7, 6)
    if sp < lo or sp + 96 > hi:
        return []
    pcs = [rd(sp + 8 * pci)]
    fp = rd(sp + 8 * fpi)
    while len(pcs) < 64 and lo <= fp and fp + 16 <= hi and fp % 8 == 0:
        nxt, ret = rd(fp), rd(fp + 8)
        if not ret:
            break
        pcs.append(ret)
        if nxt <= fp:
            break
        fp = nxt
    return pcs


class Rook(gdb.Command):
    """rook tasks | rook bt ID"""

    def __init__(self):
        super().__init__("rook", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        a = arg.split()
        if a[:1] == ["tasks"]:
            print("%-8s %-32s %-8s %s" % ("ID", "NAME", "WORKER", "STATE"))
            for t in _tasks():
                tid, name, s, w = _info(t)
                print("%-8s %-32s %-8s %s" % (tid or "-", '"%s"' % name, w if w >= 0 else "-", s))
        elif a[:1] == ["bt"] and len(a) == 2:
            t = _find(a[1])
            if t is None:
                raise gdb.GdbError("rook: no live task %s" % a[1])
            tid, name, s, w = _info(t)
            print('task %d "%s": %s' % (tid, name, s))
            if "suspended" not in s:
                raise gdb.GdbError("rook: task %d has no saved context (%s)" % (tid, s))
            ra = _u(t["t_stack"]["s_diag"]["d_ra"])
            if ra:
                print("    called from %s" % _sym(ra - 1))
            for i, pc in enumerate(_saved_pcs(t)):
                print("    #%d %s" % (i, _sym(pc - (1 if i else 0))))
        else:
            raise gdb.GdbError("usage: rook tasks | rook bt ID")


Rook()
