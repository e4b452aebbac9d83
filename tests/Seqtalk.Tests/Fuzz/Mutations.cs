using System.Text;
using CsCheck;

namespace Seqtalk.Tests.Fuzz;

/// <summary>
/// Byte-level mutations of valid files, as a CsCheck generator: a list of 1–8 edits (bit flips,
/// insertions of bytes that mean something to our readers, deletions, truncations, duplications,
/// overwrites, numbers swapped for awkward ones), applied in order. Because the edits are generated
/// values, CsCheck can shrink a failing case to fewer and smaller edits.
/// </summary>
internal static class Mutations
{
    /// <summary>Byte sequences that mean something to a CSV, TSV, JSON, vocabulary or safetensors reader.</summary>
    private static readonly byte[][] Interesting =
    [
        "\""u8.ToArray(), "\"\""u8.ToArray(), ","u8.ToArray(), "\r"u8.ToArray(), "\n"u8.ToArray(), "\r\n"u8.ToArray(),
        "\t"u8.ToArray(), [0x00], [0xEF, 0xBB, 0xBF], [0xFF, 0xFE], [0xFE, 0xFF],
        [0xFF], [0x80], [0xC0, 0x80], [0xC3], [0xE0, 0xA4], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80],
        [0xEF, 0xBF, 0xBE], [0xEF, 0xBF, 0xBF], [0xEF, 0xB7, 0x90], [0xF0, 0x9F, 0x98, 0x8A], [0xE2, 0x80, 0xA8], [0xC2, 0x85], [0xC2, 0xA0],
        "안녕"u8.ToArray(), "\u1112\u1161"u8.ToArray(), "e\u0301"u8.ToArray(), "\\"u8.ToArray(), "\\u0000"u8.ToArray(), "\\ud800"u8.ToArray(),
        "{"u8.ToArray(), "}"u8.ToArray(), "["u8.ToArray(), "]"u8.ToArray(), ":"u8.ToArray(), "null"u8.ToArray(), "true"u8.ToArray(),
        "{\"Q\":\"x\",\"A\":\"y\"}"u8.ToArray(), "Q,A"u8.ToArray(), "<pad>"u8.ToArray(), "<s>"u8.ToArray(), "</s>"u8.ToArray(), " "u8.ToArray(),
        "-1"u8.ToArray(), "0"u8.ToArray(), "8192"u8.ToArray(), "1e309"u8.ToArray(), "99999999999999999999"u8.ToArray(),
        Encoding.ASCII.GetBytes(new string('a', 300)), Encoding.ASCII.GetBytes(new string('"', 40)), Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("[", 100))),
    ];

    /// <summary>Numbers a mutated number may become (JSON configs and safetensors headers hold many).</summary>
    private static readonly string[] Numbers =
    [
        "0", "1", "-1", "2", "3", "4", "5", "7", "255", "256", "4096", "8192", "8193", "65536", "1000000", "2147483647", "2147483648",
        "4294967296", "9223372036854775807", "18446744073709551616", "1e9", "1e308", "1e309", "-1e309", "1.5", "0.0", "-0", "NaN",
    ];

    private enum Kind { FlipBit, Insert, Delete, Truncate, Duplicate, Overwrite, ReplaceNumber }

    private readonly record struct Edit(Kind Kind, uint Position, uint Other, int Choice, byte Value)
    {
        public override string ToString() => $"{Kind}@{Position}/{Other}#{Choice}:{Value}";
    }

    private static readonly Gen<Edit> GenEdit =
        Gen.Select(Gen.Frequency((3, Gen.Const(Kind.FlipBit)), (4, Gen.Const(Kind.Insert)), (2, Gen.Const(Kind.Delete)),
                (1, Gen.Const(Kind.Truncate)), (2, Gen.Const(Kind.Duplicate)), (2, Gen.Const(Kind.Overwrite)), (3, Gen.Const(Kind.ReplaceNumber))),
            Gen.UInt, Gen.UInt, Gen.Int[0, 1000], Gen.Byte,
            (kind, position, other, choice, value) => new Edit(kind, position, other, choice, value));

    /// <summary>Valid files from <paramref name="valid"/>, each with 1–8 random edits.</summary>
    public static Gen<byte[]> Of(Gen<byte[]> valid) =>
        Gen.Select(valid, GenEdit.Array[1, 8], Apply);

    /// <summary>Valid files from <paramref name="valid"/> with 1–3 of their numbers swapped for awkward ones
    /// (sizes, lengths and counts in a config or a header), the rest untouched, so most stay well-formed.</summary>
    public static Gen<byte[]> NumbersOf(Gen<byte[]> valid) =>
        Gen.Select(valid, Gen.Select(Gen.UInt, Gen.Int[0, 1000], (position, choice) => new Edit(Kind.ReplaceNumber, position, 0, choice, 0)).Array[1, 3], Apply);

    /// <summary>The edits applied in order; positions are taken modulo the current length.</summary>
    private static byte[] Apply(byte[] original, Edit[] edits)
    {
        var bytes = new List<byte>(original);
        foreach (var e in edits)
        {
            int n = bytes.Count;
            int at = n == 0 ? 0 : (int)(e.Position % (uint)n);
            switch (e.Kind)
            {
                case Kind.FlipBit:
                    if (n > 0) bytes[at] ^= (byte)(1 << (e.Value & 7));
                    break;
                case Kind.Insert:
                    bytes.InsertRange(n == 0 ? 0 : (int)(e.Position % (uint)(n + 1)), Interesting[e.Choice % Interesting.Length]);
                    break;
                case Kind.Delete:
                    if (n > 0) bytes.RemoveRange(at, Math.Min(n - at, 1 + e.Choice % 16));
                    break;
                case Kind.Truncate:
                    bytes.RemoveRange(at, n - at);
                    break;
                case Kind.Duplicate:
                    if (n > 0)
                    {
                        int length = Math.Min(n - at, 1 + e.Choice % 64);
                        var slice = bytes.GetRange(at, length);
                        bytes.InsertRange((int)(e.Other % (uint)(n + 1)), slice);
                    }
                    break;
                case Kind.Overwrite:
                    if (n > 0) bytes[at] = e.Value;
                    break;
                case Kind.ReplaceNumber:
                    ReplaceNumber(bytes, at, Numbers[e.Choice % Numbers.Length]);
                    break;
            }
        }
        return [.. bytes];
    }

    /// <summary>Replaces the first run of ASCII digits at or after <paramref name="from"/> (wrapping round) with <paramref name="number"/>.</summary>
    private static void ReplaceNumber(List<byte> bytes, int from, string number)
    {
        int n = bytes.Count;
        for (int k = 0; k < n; k++)
        {
            int i = (from + k) % n;
            if (!char.IsAsciiDigit((char)bytes[i])) continue;
            int start = i;
            while (start > 0 && char.IsAsciiDigit((char)bytes[start - 1])) start--;
            int end = i;
            while (end < n && char.IsAsciiDigit((char)bytes[end])) end++;
            bytes.RemoveRange(start, end - start);
            bytes.InsertRange(start, Encoding.ASCII.GetBytes(number));
            return;
        }
    }

    /// <summary>Random bytes, mostly short, sometimes up to a few kilobytes; biased towards the bytes readers care about.</summary>
    public static readonly Gen<byte[]> RandomBytes =
        Gen.Frequency(
            (3, Gen.Byte.Array[0, 64]),
            (2, Gen.Byte.Array[0, 4096]),
            (3, Gen.OneOf("\"", ",", "\r", "\n", "\t", "\0", "Q", "A", "a", "안", "{", "}", ":", " ", "<s>")
                .Select(s => Encoding.UTF8.GetBytes(s)).Array[0, 200].Select(parts => parts.SelectMany(p => p).ToArray())));
}
