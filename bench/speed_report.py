"""Markdown report of bench/speed.sh's runs: speed_report.py WORK_DIR PEAK_JSON THREADS STEPS
(WORK_DIR holds their reports: first, dpm, cold, cold-taesd, lcm[-taesd][-fly], lcm-first, lcm-second, lcm-unkept,
direct-first, dpm-direct .json, and peak.txt; PEAK_JSON is bench_peak's last line. Where the processor has native
bf16, dpm-bf16, cold-taesd-bf16 and lcm-taesd-bf16 .json too)."""
import json, os, sys, datetime
work, peak_json, threads, steps = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
peak = max(peak_json["gemm_gflops"], peak_json["conv_gflops"])


def operations_table(profile, heading):
    """A --profile's seconds per operation kind, share of the denoising loop and GFLOPS."""
    print(f"| {heading} | s | % of the loop | GFLOPS |")
    print("|---|---|---|---|")
    for k, v in profile.items():
        if isinstance(v, dict) and "seconds" in v:
            g = v.get("gflop", 0)
            print(f"| {k} | {v['seconds']:.1f} | {100*v['seconds']/profile['denoise_seconds']:.1f} | "
                  f"{g/v['seconds'] if g and v['seconds'] else 0:.1f} |")


r = {n: json.load(open(f"{work}/{n}.json"))
     for n in ("first", "dpm", "cold", "cold-taesd", "lcm", "lcm-taesd", "lcm-fly", "lcm-taesd-fly", "lcm-first",
               "lcm-second", "lcm-unkept", "dpm-direct")}
p = r["dpm"]["profile"]
blas = r["dpm"]["settings"].get("blas_kernels", "?")
print(f"## Speed, {datetime.date.today()}, {threads} threads, OpenBLAS kernels {blas}")
print()
print(open(f"{work}/peak.txt").read().replace("\n", "  \n"))
print(f"Full-size random SD 1.5 inpainting (f16 weights), 512x512 whole-picture mask, CFG 7.5.")
print()
print("| run | s/step | total s | peak RSS GB | first step at s |")
print("|---|---|---|---|---|")
for n, label in (("dpm", f"DPM++ 2M, {steps} steps, CFG 7.5"),
                 ("lcm-fly", "LCM + LoRA on the fly, 4 steps, guidance 1"),
                 ("lcm-taesd-fly", "LCM + LoRA on the fly, 4 steps, guidance 1, TAESD"),
                 ("lcm-first", "LCM + LoRA, TAESD, first run: writes the LoRA cache after the picture"),
                 ("lcm-second", "LCM + LoRA, TAESD, second run: packs the merged weights, keeps them"),
                 ("lcm", "LCM + LoRA from the cache, 4 steps, guidance 1"),
                 ("lcm-taesd", "LCM + LoRA from the cache, 4 steps, guidance 1, TAESD"),
                 ("lcm-unkept", "LCM + LoRA from the cache, 4 steps, guidance 1, packed weights not kept")):
    x = r[n]
    print(f"| {label} | {x['seconds_per_step']:.2f} | {x['seconds_total']:.1f} | {x['peak_rss_bytes']/1e9:.2f} | "
          f"{x['seconds_to_first_step']:.2f} |")
print()
eff = p["gflop_per_step"] / r["dpm"]["seconds_per_step"] / peak
print(f"UNet: {p['gflop_per_step']:.0f} GFLOP per CFG step (counted), {p['gflop_per_step']/r['dpm']['seconds_per_step']:.1f} GFLOPS "
      f"= {100*eff:.0f} % of the measured peak {peak:.1f} GFLOPS (the direct kernels' ceiling; the Winograd kernel's "
      f"convolutions count the direct kernel's FLOPs, so they exceed it).")
d = r["dpm-direct"]
print()
print(f"Direct convolution kernel only (`--no-winograd`), {steps} steps: {d['seconds_per_step']:.2f} s/step, "
      f"{d['seconds_total']:.1f} s, peak {d['peak_rss_bytes']/1e9:.2f} GB, "
      f"{p['gflop_per_step']/d['seconds_per_step']:.1f} GFLOPS = {100*p['gflop_per_step']/d['seconds_per_step']/peak:.0f} % of the peak; "
      f"with the Winograd kernel {d['seconds_per_step']/r['dpm']['seconds_per_step']:.2f}x per step, "
      f"{d['seconds_total']/r['dpm']['seconds_total']:.2f}x per picture.")
print()
operations_table(p, "operation")
print()
o = p.get("outside_denoising", {})
print("Other stages of the 20-step run (text encoder, VAE), by kind: " + ", ".join(
    f"{k} {v['seconds']:.1f} s" + (f" ({v['gflop'] / v['seconds']:.0f} GFLOPS)" if v.get("gflop") and v["seconds"] else "")
    for k, v in o.items()) + ".")
print()
for name, label in (("cold", "VAE"), ("cold-taesd", "TAESD, guidance 1")):
    c = r[name]
    print(f"Cold start (warm page cache), {label}: process start -> first denoising step {c['seconds_to_first_step']:.2f} s "
          f"(stages before it: " + ", ".join(f"{k} {v:.2f} s" for k, v in c["stages"].items() if k in ("encode prompt", "encode image")) + ")  ")
print()
d = r["dpm"]["seconds_total"]
for suffix, how in (("-fly", "LoRA on the fly"), ("", "LoRA from the cache")):
    l, t = r["lcm" + suffix]["seconds_total"], r["lcm-taesd" + suffix]["seconds_total"]
    print(f"LCM 4 steps ({how}) vs DPM++ {steps} steps, per picture: {l:.1f} s vs {d:.1f} s = 1/{d/l:.1f}; "
          f"with TAESD {t:.1f} s = 1/{d/t:.1f}.  ")
f = r["lcm-first"]
print(f"The first run with the LoRA: {f['seconds_total']:.1f} s to its picture, then {f['seconds_lora_cache_write']:.1f} s "
      f"writing the cache ({f['lora_cache']}).")
f = r["first"]
print(f"The first run with the model (1 step): {f['seconds_total']:.1f} s, of which keeping its packed weights "
      f"{f['stages'].get('keep packed weights', 0):.1f} s ({f.get('packed_cache', {})}); the 20-step run found them: "
      f"{r['dpm'].get('packed_cache', {})}; the second LCM run kept the merged weights packed in "
      f"{r['lcm-second']['stages'].get('keep packed weights', 0):.1f} s ({r['lcm-second'].get('packed_cache', {})}), "
      f"later ones found them: {r['lcm'].get('packed_cache', {})}. LCM from the LoRA cache packing in memory: {r['lcm-unkept']['seconds_total']:.1f} s "
      f"vs {r['lcm']['seconds_total']:.1f} s with the kept ones.")

if os.path.exists(f"{work}/dpm-bf16.json"):
    b = {n: json.load(open(f"{work}/{n}-bf16.json")) for n in ("dpm", "cold-taesd", "lcm-taesd")}
    bf16_peak = max(peak_json["bf16_gemm_gflops"], peak_json["bf16_conv_gflops"], peak_json.get("bf16_matmul_gflops", 0))
    print()
    print(f"### fp32 and bf16 side by side ({peak_json['native_bf16']}; each bf16 run right after its fp32 twin)")
    print()
    print("| run | fp32 s/step | bf16 s/step | speed-up per step | fp32 total s | bf16 total s | fp32 peak RSS GB | bf16 peak RSS GB |")
    print("|---|---|---|---|---|---|---|---|")
    for n, label in (("dpm", f"DPM++ 2M, {steps} steps, CFG 7.5"),
                     ("lcm-taesd", "LCM + LoRA from the cache, 4 steps, guidance 1, TAESD"),
                     ("cold-taesd", "cold start, 1 LCM step, TAESD")):
        f, h = r[n], b[n]
        print(f"| {label} | {f['seconds_per_step']:.2f} | {h['seconds_per_step']:.2f} | "
              f"{f['seconds_per_step']/h['seconds_per_step']:.2f}x | {f['seconds_total']:.1f} | {h['seconds_total']:.1f} | "
              f"{f['peak_rss_bytes']/1e9:.2f} | {h['peak_rss_bytes']/1e9:.2f} |")
    print()
    for n, label in (("lcm-taesd", "LCM + TAESD"), ("cold-taesd", "cold start with TAESD")):
        print(f"{label} in bf16: first denoising step at {b[n]['seconds_to_first_step']:.2f} s after process start.  ")
    bp = b["dpm"]["profile"]
    g = bp["gflop_per_step"] / b["dpm"]["seconds_per_step"]
    print(f"UNet in bf16: {g:.0f} GFLOPS = {100 * g / bf16_peak:.0f} % of the measured bf16 ceiling {bf16_peak:.0f} GFLOPS "
          f"(fp32: {100 * eff:.0f} % of {peak:.0f}).")
    print()
    operations_table(bp, "operation (bf16)")
