#!/usr/bin/env python3
"""Static wgmma register-hazard check on nvdisasm/cuobjdump SASS text.
For every kernel: dataflow over the CFG of the set of HGMMA groups that may still be in flight
(a group = the HGMMAs up to the one marked gsb0; WARPGROUP.DEPBAR.LE gsb0, N keeps the newest N).
Flags any non-HGMMA instruction that touches an accumulator register or an A-fragment register of
a possibly in-flight HGMMA.  Usage: sass_hazard.py file.sass  (exit 1 on any hazard)."""
import re, sys
txt = open(sys.argv[1]).read().split('\n')
funcs, cur = {}, None
for ln in txt:
    m = re.search(r'\.text\.(\S+?)\s*-{5,}', ln) if '----' in ln else None
    if m: cur = m.group(1); funcs[cur] = []; continue
    if cur is None: continue
    m = re.match(r'\s*(\.L_x_\d+):', ln)
    if m: funcs[cur].append(('L', m.group(1))); continue
    m = re.match(r'\s*/\*([0-9a-f]+)\*/\s+(.*?);', ln)
    if m: funcs[cur].append(('I', m.group(2).strip(), m.group(1)))
def regs_of(op, text):
    w = 4 if '.128' in op else (2 if '.64' in op else 1)
    out = set()
    # registers inside [...] are addresses (width 1, or 2 with .64); others take the opcode width
    for part in re.split(r'(\[[^\]]*\])', text):
        inside = part.startswith('[')
        for r, suf in re.findall(r'\bR(\d+)(\.64)?\b', part):
            r = int(r); n = 2 if suf else (1 if inside else w)
            out.update(range(r, r + n))
    return out
bad_total = 0
for fn, items in funcs.items():
    if 'kernel' not in fn: continue
    ins, labels = [], {}
    for it in items:
        if it[0] == 'L': labels[it[1]] = len(ins)
        else: ins.append(it)
    N = len(ins)
    state_in = [None] * N   # tuple(closed groups oldest..newest), open group
    def merge(a, b):
        if a is None: return b
        if b is None: return a
        (ca, oa), (cb, ob) = a, b
        L = max(len(ca), len(cb)); out = []
        for i in range(1, L + 1):
            s = set()
            if i <= len(ca): s |= ca[-i]
            if i <= len(cb): s |= cb[-i]
            out.append(frozenset(s))
        return (tuple(reversed(out)), frozenset(oa | ob))
    state_in[0] = ((), frozenset())
    work = [0]; hazards = {}
    hg = 0
    while work:
        i = work.pop()
        closed, opn = state_in[i]
        txt_i = ins[i][1]
        pred = re.match(r'@!?U?P\w+\s+', txt_i)
        body = txt_i[pred.end():] if pred else txt_i
        op = body.split()[0] if body.split() else ''
        if op.startswith('HGMMA'):
            m = re.match(r'HGMMA\.64x(\d+)x16\S*\s+R(\d+),\s*(R(\d+))?', body)
            nacc = int(m.group(1)) // 2; acc0 = int(m.group(2))
            regs = set(range(acc0, acc0 + nacc))
            if m.group(4): regs |= set(range(int(m.group(4)), int(m.group(4)) + 4))
            # A regs of pending groups must not be overwritten by an HGMMA either (it only reads them)
            opn = frozenset(opn | regs)
            if 'gsb0' in body: closed = closed + (opn,); opn = frozenset()
        elif op.startswith('WARPGROUP.DEPBAR'):
            n = int(re.search(r'0x([0-9a-f]+)', body).group(1), 16)
            closed = closed[len(closed) - n:] if len(closed) > n else closed
        else:
            pend = set().union(*closed) if closed else set()
            pend |= opn
            touched = regs_of(op, body) & pend
            if touched and not op.startswith('WARPGROUP'):
                hazards[ins[i][2]] = (txt_i, sorted(touched)[:6])
        if len(closed) > 6: closed = closed[-6:]
        out = (closed, opn)
        succ = []
        mb = re.search(r'BRA\s+`?\(?(\.L_x_\d+)', body)
        if mb and mb.group(1) in labels: succ.append(labels[mb.group(1)])
        uncond = (op.startswith('BRA') and not pred) or op.startswith('EXIT') and not pred or op.startswith('RET')
        if not uncond and i + 1 < N: succ.append(i + 1)
        for s in succ:
            new = merge(state_in[s], out)
            if new != state_in[s]:
                state_in[s] = new; work.append(s)
    nh = sum(1 for i in ins if i[1].split()[0].startswith('HGMMA'))
    print(f"{'HAZARD' if hazards else 'ok    '} {fn[:80]}  HGMMA={nh}  hazards={len(hazards)}")
    for a, (t, r) in sorted(hazards.items())[:8]:
        print(f"    /*{a}*/ {t}   regs {r}")
    bad_total += len(hazards)
sys.exit(1 if bad_total else 0)
