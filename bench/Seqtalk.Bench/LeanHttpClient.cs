using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Seqtalk.Bench;

/// <summary>
/// A load generator's HTTP/1.1 client, as wrk and similar tools have: one kept-alive loopback connection, requests
/// sent as prepared bytes, the response's status and <c>Content-Length</c> parsed and its body read, nothing else.
/// The serve benchmark runs its clients on the server's own two cores, where a real deployment's clients would be on
/// other machines; the general-purpose <see cref="HttpClient"/> spends about as much CPU per request as the server's
/// HTTP work does (serve --profile prints both floors), and that CPU is taken from the server. Responses must carry
/// <c>Content-Length</c> (the server's JSON responses do); anything else is an error, never a guess.
/// </summary>
internal sealed class LeanHttpClient : IDisposable
{
    private readonly Socket _socket;
    private byte[] _buffer = new byte[16 * 1024];

    private LeanHttpClient(Socket socket) => _socket = socket;

    public static async Task<LeanHttpClient> ConnectAsync(Uri address)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(address.Host), address.Port));
        return new LeanHttpClient(socket);
    }

    /// <summary>The bytes of one request: <paramref name="method"/> <paramref name="path"/> with an optional JSON body.</summary>
    public static byte[] Request(string method, string path, Uri address, byte[]? jsonBody = null)
    {
        var head = new StringBuilder()
            .Append(method).Append(' ').Append(path).Append(" HTTP/1.1\r\n")
            .Append("Host: ").Append(address.Authority).Append("\r\n");
        if (jsonBody is not null) head.Append("Content-Type: application/json\r\nContent-Length: ").Append(jsonBody.Length).Append("\r\n");
        head.Append("\r\n");
        byte[] headBytes = Encoding.ASCII.GetBytes(head.ToString());
        return jsonBody is null ? headBytes : [.. headBytes, .. jsonBody];
    }

    /// <summary>Sends <paramref name="request"/> and reads the whole response; returns its status code and body.</summary>
    public async Task<(int Status, ArraySegment<byte> Body)> SendAsync(byte[] request)
    {
        for (int sent = 0; sent < request.Length;) sent += await _socket.SendAsync(request.AsMemory(sent), SocketFlags.None);
        int filled = 0, headEnd;
        while ((headEnd = _buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (filled == _buffer.Length) throw new InvalidDataException("The response headers are longer than the buffer.");
            filled += await ReceiveAsync(filled);
        }
        var head = Encoding.ASCII.GetString(_buffer, 0, headEnd);
        if (!head.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) || head.Length < 12 || !int.TryParse(head.AsSpan(9, 3), out int status))
            throw new InvalidDataException($"Not an HTTP/1.1 response: {head.Split('\r')[0]}");
        int length = -1;
        foreach (var line in head.Split("\r\n"))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) length = int.Parse(line.AsSpan(15).Trim());
        }
        if (length < 0) throw new InvalidDataException("The response has no Content-Length.");
        int total = headEnd + 4 + length;
        if (total > _buffer.Length) Array.Resize(ref _buffer, total);
        while (filled < total) filled += await ReceiveAsync(filled);
        if (filled != total) throw new InvalidDataException("The server sent more than one response.");
        return (status, new ArraySegment<byte>(_buffer, headEnd + 4, length));
    }

    private async Task<int> ReceiveAsync(int offset)
    {
        int n = await _socket.ReceiveAsync(_buffer.AsMemory(offset), SocketFlags.None);
        return n > 0 ? n : throw new IOException("The server closed the connection.");
    }

    public void Dispose() => _socket.Dispose();
}
