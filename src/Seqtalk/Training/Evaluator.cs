using System.Globalization;
using System.Runtime.InteropServices;
using Seqtalk.Data;
using Seqtalk.Decoding;
using Seqtalk.Nn;
using Seqtalk.Text;

namespace Seqtalk.Training;

/// <summary>
/// <see cref="ChatModel.Evaluate"/>: the teacher-forced likelihood of the reference answers (loss, perplexity,
/// token accuracy, bits per character with the spelling of unknown words charged, per example too) and the quality of decoded replies against them
/// (sacreBLEU BLEU on 13a tokens and on characters, chrF, token F1, exact match, distinct-n, lengths, and
/// how much of the output the ten most frequent replies cover). See docs/cli.md for the definitions.
/// </summary>
internal static class Evaluator
{
    /// <summary>How many of the most frequent replies <see cref="EvaluationResult.TopRepliesShare"/> counts.</summary>
    public const int TopReplies = 10;

    public static EvaluationResult Run(ChatModel model, IReadOnlyList<QaPair> pairs, DecodeOptions? options)
    {
        if (pairs.Count == 0) throw new SeqtalkException("There are no pairs to evaluate.");
        int maxLength = model.Options?.MaxSequenceLength ?? TrainingOptions.DefaultMaxSequenceLength;
        var source = model.SourceTokenizer;
        var target = model.TargetTokenizer;

        // ---- Likelihood of the references (teacher forcing), per example ----
        var encoded = Trainer.Encode(pairs, Enumerable.Range(0, pairs.Count), source, target, maxLength);
        // Sort longest source first (stable): the batcher then keeps this order inside every batch, so row b
        // of batch k is pair order[k·B + b] and each row's token losses can be credited to its pair.
        var order = Enumerable.Range(0, pairs.Count).OrderByDescending(i => Math.Max(1, encoded[i].Source.Length)).ToArray();
        var sorted = order.Select(i => encoded[i]).ToList();
        const int batchSize = TrainingOptions.DefaultBatchSize;
        var batches = Batcher.MakeBatches(sorted, batchSize, shuffle: null);
        var workspace = new TrainingWorkspace(model.Network, batches.Max(b => b.Size), batches.Max(b => b.SourceSteps),
            batches.Max(b => b.TargetSteps), Environment.ProcessorCount);
        var nll = new double[pairs.Count];       // nats, over the answer's tokens and </s>
        double lossSum = 0;
        long tokens = 0, correct = 0;
        for (int k = 0; k < batches.Count; k++)
        {
            var batch = batches[k];
            var stats = workspace.Forward(batch);
            lossSum += stats.LossSum;
            tokens += stats.Tokens;
            correct += stats.Correct;
            var losses = workspace.LastTokenLosses;   // rows in (b, t) order
            int position = 0;
            for (int b = 0; b < batch.Size; b++)
            {
                int pair = order[k * batchSize + b];
                if (batch.TargetLengths[b] != encoded[pair].Target.Length + 1)
                    throw new InvalidOperationException("The batcher reordered the rows of an evaluation batch; per-example losses cannot be assigned.");
                double sum = 0;
                for (int t = 0; t < batch.TargetLengths[b]; t++) sum += losses[position + t];
                nll[pair] = sum;
                position += batch.TargetLengths[b];
            }
        }
        double loss = tokens == 0 ? double.NaN : lossSum / tokens;

        long questionTokens = encoded.Sum(p => (long)p.Source.Length);
        long questionUnknown = encoded.Sum(p => (long)p.Source.Count(id => id == SpecialTokens.UnknownId));
        long answerTokens = encoded.Sum(p => (long)p.Target.Length);
        long unknown = encoded.Sum(p => (long)p.Target.Count(id => id == SpecialTokens.UnknownId));
        int truncated = 0;
        var characters = new int[pairs.Count];
        for (int i = 0; i < pairs.Count; i++)
        {
            characters[i] = CountCharacters(target.Normalizer.Normalize(pairs[i].Answer));
            if (target.CountTokens(pairs[i].Answer) > maxLength) truncated++;
        }
        long totalCharacters = characters.Sum(c => (long)c);

        // ---- Spelling of the text behind each scored <unk> answer token (UnknownSpellingModel) ----
        var spellingBits = new double[pairs.Count];
        if (unknown > 0)
        {
            var spelling = UnknownSpellingModel.Fit(target.Vocabulary);
            var ids = new List<int>();
            var pieces = new List<string>();
            for (int i = 0; i < pairs.Count; i++)
            {
                int[] scored = encoded[i].Target;   // cut at the maximum sequence length: only these tokens were scored
                if (Array.IndexOf(scored, SpecialTokens.UnknownId) < 0) continue;
                ids.Clear();
                pieces.Clear();
                target.EncodeToPieces(pairs[i].Answer, ids, pieces);
                if (ids.Count < scored.Length || !CollectionsMarshal.AsSpan(ids)[..scored.Length].SequenceEqual(scored))
                    throw new InvalidOperationException("The target tokenizer's pieces do not match the ids it encoded; unknown tokens cannot be spelled.");
                for (int t = 0; t < scored.Length; t++)
                {
                    if (scored[t] == SpecialTokens.UnknownId) spellingBits[i] += spelling.Bits(pieces[t]);
                }
            }
        }
        double modelBits = nll.Sum() / Math.Log(2);
        double totalSpellingBits = spellingBits.Sum();

        // ---- Replies ----
        var replies = model.ReplyBatch(pairs.Select(p => p.Question).ToList(), options);
        var bleu = new BleuStatistics();
        var charBleu = new BleuStatistics();
        var chrf = new ChrfStatistics();
        var replyWords = new List<IReadOnlyList<string>>(pairs.Count);
        long referenceWords = 0, replyCharacters = 0;
        var examples = new EvaluationExample[pairs.Count];
        for (int i = 0; i < pairs.Count; i++)
        {
            string reply = replies[i], reference = pairs[i].Answer;
            var words = SacreBleuTokenizer.Tokenize13a(reply);
            var referenceTokens = SacreBleuTokenizer.Tokenize13a(reference);
            replyWords.Add(words);
            referenceWords += referenceTokens.Count;
            replyCharacters += CountCharacters(reply);
            bleu.Add(words, [referenceTokens]);
            charBleu.Add(SacreBleuTokenizer.TokenizeCharacters(reply), [SacreBleuTokenizer.TokenizeCharacters(reference)]);
            chrf.Add(reply, reference);
            double bits = nll[i] / Math.Log(2) + spellingBits[i];
            examples[i] = new EvaluationExample
            {
                Question = pairs[i].Question,
                Reference = reference,
                Reply = reply,
                Tokens = encoded[i].Target.Length + 1,
                Bits = bits,
                BitsPerCharacter = characters[i] > 0 ? bits / characters[i] : double.NaN,
                UnknownSpellingBits = spellingBits[i],
                Chrf = ChrfStatistics.Sentence(reply, reference),
            };
        }
        var hypotheses = replies.Select(r => target.Normalizer.SplitWords(r)).ToList();
        var references = pairs.Select(p => target.Normalizer.SplitWords(p.Answer)).ToList();

        return new EvaluationResult
        {
            Pairs = pairs.Count,
            Tokens = (int)tokens,
            Loss = loss,
            Perplexity = Math.Exp(loss),
            TokenAccuracy = tokens == 0 ? 0 : (double)correct / tokens,
            Bleu = bleu.Score(),
            TokenF1 = TextMetrics.MeanTokenF1(hypotheses, references),
            ExactMatch = (double)hypotheses.Zip(references).Count(x => x.First.SequenceEqual(x.Second)) / pairs.Count,
            BitsPerCharacter = totalCharacters > 0 ? (modelBits + totalSpellingBits) / totalCharacters : double.NaN,
            ModelBitsPerCharacter = totalCharacters > 0 ? modelBits / totalCharacters : double.NaN,
            UnknownSpellingBits = totalSpellingBits,
            UnknownTokens = unknown,
            ReferenceCharacters = totalCharacters,
            UnknownShare = answerTokens == 0 ? 0 : (double)unknown / answerTokens,
            TruncatedReferences = truncated,
            QuestionTokens = questionTokens,
            QuestionUnknownShare = questionTokens == 0 ? 0 : (double)questionUnknown / questionTokens,
            RepliesWithUnknown = replies.Count(r => r.Contains(SpecialTokens.Unknown, StringComparison.Ordinal)),
            CharacterBleu = charBleu.Score(),
            Chrf = chrf.Score(),
            Distinct1 = TextMetrics.Distinct(replyWords, 1),
            Distinct2 = TextMetrics.Distinct(replyWords, 2),
            MeanReplyLength = replyWords.Average(w => w.Count),
            MeanReplyCharacters = (double)replyCharacters / pairs.Count,
            MeanReferenceLength = (double)referenceWords / pairs.Count,
            TopRepliesShare = TextMetrics.TopRepliesShare(replies, TopReplies),
            Examples = examples,
        };
    }

    /// <summary>Characters as a reader counts them: Unicode text elements (extended grapheme clusters), so a
    /// Hangul syllable, an accented letter written with a combining mark, or an emoji is one character.</summary>
    internal static int CountCharacters(string text) => new StringInfo(text).LengthInTextElements;

    /// <summary>The rows of the training file the model held out for validation, found again from its split record.</summary>
    /// <exception cref="SeqtalkException">The model records no split or no validation rows, or the file has another number of rows.</exception>
    public static List<QaPair> ValidationPairs(ChatModel model, IReadOnlyList<QaPair> pairs)
    {
        var split = model.Split
            ?? throw new SeqtalkException("The model does not record its training split (training.split in config.json), so its validation rows cannot be found; evaluate on a separate file instead.");
        if (split.ValidationSize == 0)
            throw new SeqtalkException("The model was trained with no validation rows (--validation-size 0); evaluate on a separate file instead.");
        if (pairs.Count != split.Rows)
            throw new SeqtalkException(string.Create(CultureInfo.InvariantCulture,
                $"The file has {pairs.Count} usable rows but the model was trained on a file with {split.Rows}; --validation-only needs the same training file."));
        var (_, validation) = DataSplit.Split(split.Rows, split.ValidationSize, split.Mode, split.Seed);
        return validation.Select(i => pairs[i]).ToList();
    }
}
