using System.Text;

namespace Seqtalk.Tests.Text;

/// <summary>The shared Korean Q&amp;A corpus (header Q,A,label), read once. It lives outside the repository:
/// ../shared/data/ChatbotData.csv relative to the folder holding Seqtalk.slnx.</summary>
internal static class ChatbotData
{
    private static readonly Lazy<(string[] Questions, string[] Answers)> Data = new(Read);

    public static IReadOnlyList<string> Questions => Data.Value.Questions;
    public static IReadOnlyList<string> Answers => Data.Value.Answers;

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Seqtalk.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException($"No Seqtalk.slnx above {AppContext.BaseDirectory}.");
    }

    private static (string[], string[]) Read()
    {
        string path = Path.GetFullPath(Path.Combine(RepositoryRoot(), "..", "shared", "data", "ChatbotData.csv"));
        Assert.True(File.Exists(path), $"The shared corpus is missing: {path}");
        var rows = ParseCsv(File.ReadAllText(path, Encoding.UTF8));
        Assert.Equal(["Q", "A", "label"], rows[0]);
        var questions = rows.Skip(1).Select(r => r[0]).ToArray();
        var answers = rows.Skip(1).Select(r => r[1]).ToArray();
        Assert.True(questions.Length > 10_000, $"Expected the full corpus, read {questions.Length} rows.");
        return (questions, answers);
    }

    /// <summary>RFC 4180: commas, double quotes with "" escapes, CRLF or LF.</summary>
    private static List<string[]> ParseCsv(string text)
    {
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c != '"') field.Append(c);
                else if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else quoted = false;
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (c == '\n')
            {
                row.Add(field.ToString().TrimEnd('\r'));
                field.Clear();
                rows.Add([.. row]);
                row.Clear();
            }
            else field.Append(c);
        }
        if (field.Length > 0 || row.Count > 0) { row.Add(field.ToString()); rows.Add([.. row]); }
        return rows;
    }
}
