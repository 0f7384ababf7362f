#!/usr/bin/env python3
"""Make the sample videos a newcomer sees in the demo, with ffmpeg's built-in sources.

Writes small H.264/AAC MP4 files and samples.json (title, kind, description of each)
beside this script. Deterministic and quick; run again to remake them.
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = [
    ("film-hongse-jiyi.mp4", "红色记忆：我县革命老区纪实", "feature_film", 20, "testsrc2", 440,
     "县委组织部摄制的专题片（样片）"),
    ("lecture-jiceng-zhili.mp4", "党课：基层治理与村务公开", "lecture", 15, "smptebars", 523,
     "县委党校讲座（样片）"),
    ("farming-guoshu-jiajie.mp4", "农业实用技术：果树冬季修剪", "farming_technique", 12, "mandelbrot",
     660, "县农业农村局技术讲座（样片）"),
]


def make(name: str, seconds: int, source: str, tone: int) -> None:
    out = HERE / name
    if out.exists():
        return
    video = f"{source}=size=320x240:rate=25" if source != "mandelbrot" else "mandelbrot=size=320x240:rate=25"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=44100",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(out)],
        check=True,
    )


def main() -> int:
    manifest = []
    for name, title, kind, seconds, source, tone, description in SAMPLES:
        make(name, seconds, source, tone)
        manifest.append({"file": name, "title": title, "kind": kind, "description": description})
    (HERE / "samples.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                       encoding="utf-8")
    print(f"{len(manifest)} sample videos in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
