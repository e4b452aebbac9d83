using System.CommandLine;
using System.Text;
using Seqtalk.Reporting;

namespace Seqtalk.Cli.Commands;

/// <summary><c>seqtalk reply --model DIR "text" …</c>: one reply line per text, decoded together; with --nbest N
/// above 1, N tab-separated candidate lines per text (question, rank, score, log-probability, text); with
/// <c>--show-attention</c> each reply is followed by its attention heatmap, and <c>--attention-image FILE</c>
/// draws it as an SVG.</summary>
internal static class ReplyCommand
{
    public static Command Create()
    {
        var model = SharedOptions.Model();
        var decodeFlags = new DecodeFlags();
        var texts = new Argument<string[]>("text") { Description = "Questions to reply to; each gets one reply line, in order.", Arity = ArgumentArity.OneOrMore };
        var showAttention = new Option<bool>("--show-attention")
        {
            Description = "After each reply, draw its attention (reply tokens × question tokens) as shaded blocks (models trained with --attention).",
        };
        var attentionImage = new Option<string?>("--attention-image")
        {
            Description = "Write the reply's attention as an SVG image to FILE (one question only).",
            HelpName = "FILE",
        };

        var command = new Command("reply", "Reply to one or more questions.") { model, showAttention, attentionImage };
        decodeFlags.AddTo(command);
        command.Arguments.Add(texts);
        command.SetAction(parse => CommandRunner.Run(parse, () =>
        {
            var decode = decodeFlags.Read(parse);
            var questions = parse.GetValue(texts)!;
            string? image = parse.GetValue(attentionImage);
            bool show = parse.GetValue(showAttention);
            if (image is not null && questions.Length != 1)
                throw new UsageException($"--attention-image draws one reply, but {questions.Length} questions were given");
            var chat = ChatModel.Load(parse.GetValue(model)!);
            if (!show && image is null)
            {
                DecodeFlags.Print(chat, questions, decode, Console.Out);
                return ExitCodes.Ok;
            }

            var results = chat.ReplyDetailedBatch(questions, decode);
            foreach (var r in results)
            {
                if (r.Attention is null)
                    throw new SeqtalkException("this model has no attention; train with --attention dot|general|bahdanau to see where a reply looks.");
            }
            for (int i = 0; i < results.Count; i++)
            {
                var r = results[i];
                var rows = AttentionMap.RowLabels(r.Tokens, r.Attention!.Length);
                Console.WriteLine(CommandRunner.OneLine(r.Text));
                if (show)
                {
                    Console.Write(AttentionMap.RenderText(r.Attention, rows, r.SourceTokens));
                    if (i < results.Count - 1) Console.WriteLine();
                }
                if (image is not null)
                    WriteImage(image, AttentionMap.RenderSvg(r.Attention, rows, r.SourceTokens, $"{questions[i]} → {r.Text}"));
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static void WriteImage(string path, string svg)
    {
        try
        {
            File.WriteAllText(path, svg, new UTF8Encoding(false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SeqtalkException($"Cannot write --attention-image '{path}': {e.Message}", e);
        }
    }
}
