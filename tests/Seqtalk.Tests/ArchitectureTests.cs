using System.Text.RegularExpressions;
using Seqtalk.Tests.Support;

namespace Seqtalk.Tests;

/// <summary>
/// STYLE rule 1: one-way dependencies between the library's folders (= namespaces). Each folder may
/// name only the namespaces listed for it; the root namespace (SeqtalkException, ChatModel's records)
/// is open to all but Kernels, which is pure span math.
/// </summary>
public partial class ArchitectureTests
{
    private static readonly Dictionary<string, string[]> s_allowed = new()
    {
        ["Kernels"] = [],
        ["Text"] = [],
        ["Data"] = ["Text"],
        ["Nn"] = ["Kernels", "Data"],
        ["Decoding"] = ["Kernels", "Nn", "Data", "Text"],
        ["Training"] = ["Kernels", "Nn", "Data", "Text", "Decoding", "IO"],
        ["IO"] = ["Nn", "Text", "Data", "Training", "Decoding", "Reporting"],
        ["Reporting"] = ["Training"],
    };

    [GeneratedRegex(@"\bSeqtalk\.(Kernels|Text|Data|Nn|Decoding|Training|IO|Reporting)\b")]
    private static partial Regex NamespaceReference();

    [Fact]
    public void Folders_ReferenceOnlyTheLayersBelowThem()
    {
        var violations = new List<string>();
        foreach (var (folder, allowed) in s_allowed)
        {
            string dir = Path.Combine(RepoPaths.Root, "src", "Seqtalk", folder);
            Assert.True(Directory.Exists(dir), $"missing folder {dir}");
            foreach (var file in Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories))
            {
                var lines = File.ReadAllLines(file);
                for (int i = 0; i < lines.Length; i++)
                {
                    if (lines[i].TrimStart().StartsWith("namespace ", StringComparison.Ordinal)) continue;
                    foreach (Match m in NamespaceReference().Matches(lines[i]))
                    {
                        string target = m.Groups[1].Value;
                        if (target != folder && !allowed.Contains(target))
                            violations.Add($"{Path.GetFileName(file)}:{i + 1} ({folder} -> {target}): {lines[i].Trim()}");
                    }
                }
                if (folder == "Kernels" && lines.Any(l => l.Contains("SeqtalkException", StringComparison.Ordinal)))
                    violations.Add($"{Path.GetFileName(file)}: Kernels must not throw user-facing exceptions (use Debug.Assert)");
            }
        }
        Assert.True(violations.Count == 0, "Layering violations:\n" + string.Join('\n', violations));
    }
}
