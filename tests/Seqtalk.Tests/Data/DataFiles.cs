using System.Text;

namespace Seqtalk.Tests.Data;

/// <summary>A temporary folder for one test class, and the path of the shared ChatbotData.csv.</summary>
public sealed class DataFiles : IDisposable
{
    private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false);

    public string Folder { get; } = Directory.CreateTempSubdirectory("seqtalk-data-").FullName;

    public string Write(string name, string text) => WriteBytes(name, s_utf8.GetBytes(text));

    public string WriteBytes(string name, byte[] bytes)
    {
        string path = Path.Combine(Folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);

    /// <summary>../shared/data/ChatbotData.csv relative to the folder holding Seqtalk.slnx.</summary>
    public static string ChatbotDataPath
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Seqtalk.slnx")))
                    return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "ChatbotData.csv"));
            }
            throw new InvalidOperationException("Seqtalk.slnx not found above " + AppContext.BaseDirectory);
        }
    }
}
