import json, sys
rows = sys.argv[1:]
def load(p):
    d = json.load(open(p)); (v,) = d.values(); return v
LAB = ("electric_guitar", "violin", "cello")
print("| run | val mAP | test top-1 | test mix F1 (P/R) | test mAP | phys top-1 | phys mAP | phys2 top-1 | phys2 mAP | rec top-1 | rec mix F1 (P/R) | rec mAP |")
for name, h1, h2, val in [(a.split("=")[0], *a.split("=")[1].split(",")) for a in rows]:
    h, p2 = load(h1), load(h2)
    t, ph, rc, q = h["test"], h["physical"], h["recorded"], p2["physical"]
    print(f"| {name} | {val} | {t['top1_single']:.3f} | {t['mixtures_micro_f1']:.3f} ({t['mixtures_precision']:.3f}/{t['mixtures_recall']:.3f}) | {t['mAP']:.3f} | {ph['top1_single']:.3f} | {ph['mAP']:.3f} | {q['top1_single']:.3f} | {q['mAP']:.3f} | {rc['top1_single']:.3f} | {rc['mixtures_micro_f1']:.3f} ({rc['mixtures_precision']:.3f}/{rc['mixtures_recall']:.3f}) | {rc['mAP']:.3f} |")
print()
print("per label recall (physical gen1 / physical2 / recorded)")
for name, h1, h2, val in [(a.split("=")[0], *a.split("=")[1].split(",")) for a in rows]:
    h, p2 = load(h1), load(h2)
    out = []
    for lab in LAB:
        g = lambda s: s["per_label"].get(lab, {})
        vals = [g(h["physical"]), g(p2["physical"]), g(h["recorded"])]
        out.append(lab + " " + " / ".join(f"{v.get('recall', float('nan')):.2f}" for v in vals))
    print(name, " | ".join(out))
