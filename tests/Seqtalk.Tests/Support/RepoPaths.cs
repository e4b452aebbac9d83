namespace Seqtalk.Tests.Support;

/// <summary>Finds the repository root (the folder holding Seqtalk.slnx) and the shared data beside it.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>../shared/data/ChatbotData.csv relative to the repository root (never copied into it).</summary>
    public static string ChatbotData => Path.GetFullPath(Path.Combine(Root, "..", "shared", "data", "ChatbotData.csv"));

    public static string Samples(string file) => Path.Combine(Root, "samples", file);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Seqtalk.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException($"No Seqtalk.slnx above {AppContext.BaseDirectory}.");
    }
}
