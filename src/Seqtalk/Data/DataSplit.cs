using System.Globalization;

namespace Seqtalk.Data;

/// <summary>Which rows become the validation set.</summary>
public enum SplitMode
{
    /// <summary>A seeded random sample of the rows.</summary>
    Random,
    /// <summary>The last rows of the file, as the Keras tutorial's <c>validation_split</c> did.</summary>
    Tail,
}

/// <summary>Splits row indices into training and validation sets.</summary>
internal static class DataSplit
{
    /// <summary>Splits <c>0 … count−1</c>. <paramref name="validationSize"/> below 1 is a fraction of
    /// <paramref name="count"/> (rounded to the nearest row), 1 or more a number of rows, 0 no
    /// validation set. Both lists are in ascending order.</summary>
    /// <exception cref="SeqtalkException">The size is negative, not a whole number ≥ 1, gives an empty
    /// validation set, or leaves no training rows.</exception>
    public static (List<int> Train, List<int> Validation) Split(int count, double validationSize, SplitMode mode, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        int validation = ValidationCount(count, validationSize);
        int trainCount = count - validation;
        return mode switch
        {
            SplitMode.Tail => ([.. Enumerable.Range(0, trainCount)], [.. Enumerable.Range(trainCount, validation)]),
            SplitMode.Random => RandomSplit(count, validation, seed),
        };
    }

    private static (List<int> Train, List<int> Validation) RandomSplit(int count, int validation, int seed)
    {
        var order = Enumerable.Range(0, count).ToArray();
        Batcher.Shuffle(order.AsSpan(), new Random(seed));
        var val = order[..validation];
        var train = order[validation..];
        Array.Sort(val);
        Array.Sort(train);
        return ([.. train], [.. val]);
    }

    /// <summary>The number of validation rows for a size, checked.</summary>
    /// <exception cref="SeqtalkException">See <see cref="Split"/>.</exception>
    public static int ValidationCount(int count, double validationSize)
    {
        string size = validationSize.ToString(CultureInfo.InvariantCulture);
        if (double.IsNaN(validationSize) || validationSize < 0)
            throw new SeqtalkException($"Validation size {size} is not valid; use a fraction below 1 (0.2 = 20%), a number of pairs, or 0 for none.");
        if (validationSize == 0) return 0;

        int validation;
        if (validationSize < 1)
        {
            validation = (int)Math.Round(count * validationSize, MidpointRounding.AwayFromZero);
            if (validation == 0)
                throw new SeqtalkException($"Validation size {size} of {count} pairs gives an empty validation set; use a larger fraction or a number of pairs.");
        }
        else
        {
            if (validationSize != Math.Floor(validationSize) || validationSize > int.MaxValue)
                throw new SeqtalkException($"Validation size {size} is neither a fraction below 1 nor a whole number of pairs.");
            validation = (int)validationSize;
        }

        if (validation >= count)
            throw new SeqtalkException($"Validation size {size} takes {validation} of {count} pairs and leaves none for training; use a smaller size.");
        return validation;
    }
}
