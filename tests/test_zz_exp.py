import os, struct, zlib, time, threading, json
import numpy as np, psutil, pytest
import e2e_setup
from host_server import e2e_server

def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)

def png(path, w, h, full=True):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    if full:
        co = zlib.compressobj(9)
        row = bytes(1 + 3 * w)
        parts = [co.compress(row) for _ in range(h)] + [co.flush()]
        idat = b"".join(parts)
    else:
        idat = zlib.compress(bytes(1 + 3 * w))[:8]
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    open(path, "wb").write(data)
    return len(data)

class Peak:
    def __init__(self, pid):
        self.p = psutil.Process(pid); self.peak = 0; self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True); self.t.start()
    def run(self):
        while not self.stop:
            try: self.peak = max(self.peak, self.p.memory_info().rss)
            except Exception: pass
            time.sleep(0.02)

def test_exp(tmp_path):
    base = str(tmp_path / "b")
    info = e2e_setup.prepare_base(base)
    inp = os.path.join(base, "input")
    print("bomb bytes", png(os.path.join(inp, "bomb.png"), 9000, 9000, full=False))
    print("big bytes", png(os.path.join(inp, "big.png"), 12000, 12000))
    with e2e_server(base, prepared=info) as srv:
        proc = psutil.Process(srv.proc.pid)
        def job(g, label):
            pk = Peak(srv.proc.pid)
            r = srv.queue(g); assert r.status_code == 200, r.text
            h = srv.wait(r.json()["prompt_id"], 900)
            pk.stop = True; time.sleep(0.1)
            print(label, h["status"]["status_str"], "rss MB", proc.memory_info().rss >> 20, "peak", pk.peak >> 20, flush=True)
        g = lambda **kw: e2e_setup.lumosx_graph(info["spiece"], **kw)
        job(g(prefix="n0"), "normal0")
        job(g(prefix="n1"), "normal1")
        for name in ("bomb.png", "big.png"):
            lo = {"1": {"class_type": "LoadImage", "inputs": {"image": name}},
                  "2": {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}},
                  "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}}}
            job(lo, "loadonly " + name)
            job(g(prefix="n2" + name), "normal")
            h = g(prefix="h" + name)
            h["10"]["inputs"]["image"] = name
            job(h, "as background " + name)
            job(g(prefix="n3" + name), "normal")
            h = g(prefix="h2" + name)
            h["8"]["inputs"]["image"] = name
            job(h, "as attribute " + name)
            job(g(prefix="n4" + name), "normal")
            h = g(prefix="h3" + name)
            h["4"]["inputs"]["image"] = name
            job(h, "as face photo " + name)
            job(g(prefix="n5" + name), "normal")
