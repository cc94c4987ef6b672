"""Peer pipelines for bench/engine.py, run in their own process so each one's CPU time and peak
RSS are its own. Usage: peers.py <vips|pillow> <out-dir> <passes> <files>...
Prints "cpu_seconds S photos N": CPU time of the resize loop only (interpreter start-up and
imports excluded, so the peers are not penalised for being Python)."""
import os
import sys
import time

SIZES = (1080, 720, 360)
Q = 85


def target(w, h, n):
    short = min(w, h)
    if short <= n:
        return w, h
    scale = lambda long: max(1, (long * n + short // 2) // short)
    return (n, scale(h)) if w <= h else (scale(w), n)


def run_vips(files, out, passes):
    import pyvips  # noqa: E402

    written = []
    for p in range(passes):
        for f in files:
            head = pyvips.Image.new_from_file(f)  # header only: the pipeline is lazy
            w, h = head.width, head.height
            prev = None
            for n in SIZES:
                tw, th = target(w, h, n)
                if prev is None:
                    # One decode with shrink-on-load, then everything from memory.
                    img = pyvips.Image.thumbnail(f, tw, height=th, size="down")
                else:
                    img = prev.thumbnail_image(tw, height=th, size="down")
                img = img.copy_memory()
                data = img.jpegsave_buffer(Q=Q, strip=True)
                if p == passes - 1:
                    written.append((f, n, data))
                prev = img
    return written


def run_pillow(files, out, passes):
    from PIL import Image

    written = []
    for p in range(passes):
        for f in files:
            img = Image.open(f)
            w, h = img.size
            for n in SIZES:
                tw, th = target(w, h, n)
                img.thumbnail((tw, th), Image.LANCZOS)  # draft (DCT scaling) + resize
                img = img.convert("RGB")
                import io

                buf = io.BytesIO()
                img.save(buf, "JPEG", quality=Q)
                if p == passes - 1:
                    written.append((f, n, buf.getvalue()))
    return written


def main():
    mode, out, passes, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    run = {"vips": run_vips, "pillow": run_pillow}[mode]
    if mode == "vips":
        import pyvips  # import before timing

        pyvips.cache_set_max(0)  # no cross-pass result cache: every pass does the work
    else:
        import PIL.Image  # noqa: F401
    t0 = time.process_time()
    written = run(files, out, passes)
    cpu = time.process_time() - t0
    for f, n, data in written:
        stem = os.path.splitext(os.path.basename(f))[0]
        with open(os.path.join(out, f"{stem}_{n}.jpg"), "wb") as fh:
            fh.write(data)
    print(f"cpu_seconds {cpu:.3f} photos {len(files) * passes}")


if __name__ == "__main__":
    main()
