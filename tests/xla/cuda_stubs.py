"""Stand-ins for the CUDA libraries that the index's torch wheel links but XLA on CPU never calls.

    python tests/xla/cuda_stubs.py VENV_SITE_PACKAGES

torch's wheel on the package index is built for CUDA: libtorch_cpu.so itself links libcudart
and libcupti, and `import torch` fails without the nvidia-* wheels (4.8 GB that a CPU never
loads). This writes, beside torch's own libraries, one small library per missing CUDA library:
its name, the version nodes torch's libraries ask for, and each symbol they take from it, every
function returning 100 (cudaErrorNoDevice / CUDA_ERROR_NO_DEVICE: "no device", which is what
torch.cuda then reports). The dynamic linker binds functions lazily, so none of them runs unless
something calls CUDA; torch.cuda.is_available() is then False, as on any machine without a GPU.
Needs readelf and cc (binutils, gcc).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

NO_DEVICE = 100  # cudaErrorNoDevice, CUDA_ERROR_NO_DEVICE
MESSAGE = "no CUDA device: a stand-in library from tests/xla/cuda_stubs.py"
# What torch calls without a device must answer as a real library does there: transformers asks
# torch.cuda.is_current_stream_capturing() on every forward, and torch turns the error code
# into text. (name pattern, assembly body)
ANSWERS = [
    # the count written through the pointer argument, and "no device"
    (r"^(cudaGetDeviceCount|cuDeviceGetCount)$", ["movl $0, (%rdi)", f"mov ${NO_DEVICE}, %eax"]),
    # const char* out-parameter (the driver API): the message, success
    (
        r"^cuGetError(String|Name)$",
        ["lea message(%rip), %rax", "mov %rax, (%rsi)", "xor %eax, %eax"],
    ),
    # const char* returned: cudaGetErrorString, cudnnGetErrorString, ncclGetErrorString, ...
    (r"(Error|Status|Result)(String|Name)$", ["lea message(%rip), %rax"]),
]


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], capture_output=True, text=True).stdout


def needed(lib: Path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", readelf("-d", str(lib)))


def version_files(lib: Path) -> dict[str, str]:
    """Version node name -> the library file that defines it, from lib's version needs."""
    files, current = {}, None
    needs = readelf("-V", str(lib)).split("Version needs section", 1)
    for line in needs[1].splitlines() if len(needs) > 1 else []:
        if match := re.search(r"File: (\S+)", line):
            current = match.group(1)
        elif (match := re.search(r"Name: (\S+)", line)) and current:
            files[match.group(1)] = current
    return files


def symbols(lib: Path) -> tuple[list[tuple[str, str, str]], set[str]]:
    """([(symbol, version or "", FUNC|OBJECT|...)] that lib takes from elsewhere, {symbols it
    defines})."""
    taken, defined = [], set()
    for line in readelf("--dyn-syms", str(lib)).splitlines():
        fields = line.split()
        if len(fields) < 8 or not fields[0].rstrip(":").isdigit():
            continue
        name, _, version = fields[7].partition("@")
        if fields[6] == "UND":
            taken.append((name, version.lstrip("@"), fields[3]))
        else:
            defined.add(name)
    return taken, defined


def system_libraries() -> dict[str, str]:
    """The dynamic linker's cache: library name -> path."""
    listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    found = {}
    for line in listing.splitlines()[1:]:
        if "=>" in line and "x86-64" in line:
            found.setdefault(line.split()[0], line.rsplit("=>", 1)[1].strip())
    return found


def missing_symbols(site: Path) -> dict[str, dict[str, dict[str, str]]]:
    """{missing library: {version: {symbol: type}}} over torch's, torchvision's, torch_xla's."""
    libs = [p for p in site.glob("torch*/**/*.so*") if p.is_file()] + list(site.glob("_XLAC*.so"))
    system = system_libraries()
    present = {p.name for p in site.rglob("*.so*")} | set(system)
    scanned = {lib: symbols(lib) for lib in libs}
    defined = set().union(*(d for _, d in scanned.values()))
    for name in {n for lib in libs for n in needed(lib)} & set(system):
        defined |= symbols(Path(system[name]))[1]
    wanted: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for lib, (taken, _) in scanned.items():
        absent = sorted(set(needed(lib)) - present)
        if not absent:
            continue
        files = version_files(lib)
        for name in absent:
            wanted[name]  # a library asked for without versioned symbols still needs its file
        for symbol, version, kind in taken:
            if files.get(version) in absent:
                wanted[files[version]][version][symbol] = kind
            elif not version and symbol not in defined and not symbol.startswith(("Py", "_Py")):
                # unversioned (NCCL, cuDNN's older ABI): any stub that is loaded serves it
                wanted[absent[0]][""][symbol] = kind
    return wanted


def build(name: str, versions: dict[str, dict[str, str]], out_dir: Path, work: Path) -> None:
    lines = [".section .rodata", f'message: .asciz "{MESSAGE}"', ".text"]
    script = []
    for version, names in sorted(versions.items()):
        if version:
            script.append(f"{version} {{ global: {'; '.join(sorted(names))}; }};")
        for symbol, kind in sorted(names.items()):
            if kind == "OBJECT":  # data: zeros, never read without a device
                lines += [".data", f".globl {symbol}", f".type {symbol},@object",
                          f".size {symbol},256", f"{symbol}: .zero 256", ".text"]  # fmt: skip
            else:
                body = next(
                    (b for p, b in ANSWERS if re.search(p, symbol)), [f"mov ${NO_DEVICE}, %eax"]
                )
                lines += [
                    f".globl {symbol}",
                    f".type {symbol},@function",
                    f"{symbol}:",
                    *body,
                    "ret",
                ]
    source, version_script = work / f"{name}.s", work / f"{name}.map"
    source.write_text("\n".join(lines) + "\n")
    version_script.write_text("\n".join(script) + "\n")
    command = ["cc", "-shared", "-nostdlib", f"-Wl,-soname,{name}", "-o", str(out_dir / name)]
    if script:
        command.append(f"-Wl,--version-script,{version_script}")
    subprocess.run([*command, str(source)], check=True)


def main(argv: list[str] | None = None) -> int:
    site = Path((argv or sys.argv[1:])[0])
    out_dir = site / "torch" / "lib"  # on the RPATH ($ORIGIN) of every torch library
    listing = out_dir / "CUDA_STUBS"  # what an earlier run wrote: rebuilt, never taken as real
    if listing.exists():
        for name in listing.read_text().split():
            (out_dir / name).unlink(missing_ok=True)
    wanted = missing_symbols(site)
    with tempfile.TemporaryDirectory() as work:
        for name, versions in sorted(wanted.items()):
            build(name, versions, out_dir, Path(work))
    listing.write_text("".join(f"{name}\n" for name in sorted(wanted)))
    count = sum(len(names) for v in wanted.values() for names in v.values())
    print(f"cuda_stubs.py: {len(wanted)} CUDA libraries stubbed ({count} symbols) in {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
