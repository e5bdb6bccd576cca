/*
 * TEST-ONLY shim: bcryptprimitives.dll for running latchkey-gateway.exe under Wine 8.
 *
 * Why: Rust's std (1.78 and later) gets its randomness (HashMap keys, etc.) from
 * `ProcessPrng` in bcryptprimitives.dll. Windows 10+ has it; Wine 8 does not ship
 * bcryptprimitives.dll at all, so the exe fails to load under Wine (c0000135). This
 * shim exports `ProcessPrng` by name and forwards to advapi32's `SystemFunction036`
 * (RtlGenRandom), which Wine implements.
 *
 * NEVER ship this with the product or put it into an installer: real Windows has the
 * genuine DLL in System32. It exists only so tests/windows/msi.sh can run the real exe.
 *
 * Build (from this directory):
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 * Use: put bcryptprimitives.dll beside latchkey-gateway.exe (the loader searches the
 * exe's directory first; it is also found there when services.exe starts the exe), or
 * into the Wine prefix's drive_c/windows/system32.
 */
#include <windows.h>

/* RtlGenRandom; exported by advapi32 as SystemFunction036. Length is a ULONG. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* SIZE_T may exceed ULONG on 64-bit: fill in chunks of at most 1 GiB. */
    const SIZE_T chunk = (SIZE_T)1 << 30;

    while (len > 0) {
        ULONG n = (ULONG)(len < chunk ? len : chunk);
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    /* Like the real ProcessPrng: always TRUE when the generator works. */
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
